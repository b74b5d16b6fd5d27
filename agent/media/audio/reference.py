"""The echo canceller's far-end reference: exactly what the playback thread hands the device.

:meth:`AudioPlayback.tap` makes one :class:`ReferenceTap`. The playback thread pushes every
block it writes (the model's speech, and the silence it writes between replies while a tap is
open) right after the device took it; the tap converts it to 16 kHz mono and keeps the newest
``keep_s`` (0.5 s) in a ring. The canceller reads it back by absolute sample position
(:attr:`written` counts every sample ever pushed), so the two threads never share more than a
lock held for one copy.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from agent.media.audio.convert import PlaybackConverter

Int16Array = npt.NDArray[np.int16]

REFERENCE_RATE = 16000
MAX_KEEP_S = 0.5
"""Reference audio kept: the longest hold-back the canceller can ask for, plus one chunk."""


class ReferenceTap:
    """A bounded ring of the speaker's output at 16 kHz mono S16.

    ``push`` (playback thread) converts from ``in_rate``; ``read_into`` (the canceller) copies
    the samples ``[end - len(out), end)`` and fills with zeros what was never written or has
    left the ring. ``latency_s`` is the output latency the device reported when it opened.
    """

    def __init__(self, in_rate: int = 24000, keep_s: float = MAX_KEEP_S) -> None:
        if not 0.0 < keep_s <= MAX_KEEP_S:
            raise ValueError(f"keep_s must be in (0, {MAX_KEEP_S}], got {keep_s}")
        self.in_rate = in_rate
        self.size = round(REFERENCE_RATE * keep_s)
        self._ring: Int16Array = np.zeros(self.size, np.int16)
        self._written = 0
        self._lock = threading.Lock()
        self._converter = (
            PlaybackConverter(in_rate, REFERENCE_RATE, 1) if in_rate != REFERENCE_RATE else None
        )
        self.latency_s = 0.0
        self.closed = False

    @property
    def written(self) -> int:
        """Samples pushed since the tap opened (16 kHz)."""
        return self._written

    def push(self, pcm: bytes) -> None:
        """Append one block of mono S16LE at ``in_rate`` (what the device just took)."""
        if self._converter is not None:
            pcm = self._converter.convert(pcm)
        samples: Int16Array = np.frombuffer(pcm, "<i2", len(pcm) // 2)
        n = samples.size
        if n == 0:
            return
        if n > self.size:  # only the newest fit
            samples = samples[-self.size :]
        with self._lock:
            start = (self._written + n - samples.size) % self.size
            first = min(samples.size, self.size - start)
            self._ring[start : start + first] = samples[:first]
            if first < samples.size:
                self._ring[: samples.size - first] = samples[first:]
            self._written += n

    def read_into(self, out: Int16Array, end: int) -> None:
        """Fill ``out`` with the samples that end at absolute position ``end``."""
        n = out.size
        with self._lock:
            oldest = max(0, self._written - self.size)
            lo, hi = max(end - n, oldest), min(end, self._written)
            if hi <= lo:
                out[:] = 0
                return
            out[: lo - (end - n)] = 0
            out[n - (end - hi) :] = 0
            at = lo % self.size
            count = hi - lo
            dest = out[lo - (end - n) : hi - (end - n)]
            first = min(count, self.size - at)
            dest[:first] = self._ring[at : at + first]
            if first < count:
                dest[first:] = self._ring[: count - first]
