"""In-process acoustic echo cancellation (the ``aec`` echo policy), on WebRTC's AEC3.

:class:`EchoCancellingSource` wraps the microphone like the half-duplex gate does, but instead
of muting it while the speaker plays it subtracts the speaker's sound: every 16 kHz mono chunk
goes through ``pywebrtc_audio.AudioProcessor`` (AEC3, with WebRTC's noise suppression and AGC2
as options) in whole 10 ms frames, beside the far-end reference, the audio the playback thread
handed to the device (:meth:`AudioPlayback.tap`). So the user can talk over the model and the
model does not hear itself.

Alignment: mic and reference samples are paired in order. The reference is held back by
``delay_ms`` or, when that is not set, by the output latency the device reported, so that the
reference of a mic chunk is what was written that long before the chunk was captured. The pairing
then advances by counting samples (both streams run on the device's clock; the speaker writes
silence between replies while tapped), and is corrected only when the chunks' arrival shows it
drifted by more than ``RESYNC_MS`` (a dropped chunk, a stalled device). AEC3's own delay
estimator covers the rest of the acoustic path.

Each reply starts AEC3 afresh: when the reference turns on after ``FRESH_AFTER_QUIET_MS`` of
silence, the processor is reset before the chunk. A fresh AEC3 suppresses conservatively until
its filter has converged, so a reply's first echo is taken from its first frame; a state carried
over from the last reply is not always so safe: after double talk (the person barging in) AEC3
may keep passing the echo of the next replies' first 50-200 ms, long enough for the service to
hear the model's own voice and cut the reply, and each cut reply is too short to win it back.

A consumer slower than the mic (AEC3 on a CPU too busy for it) loses the oldest chunks at the
capture's queue; the canceller says so, with what to do, at most every ``BEHIND_LOG_S``.

``pywebrtc_audio`` is imported only when a canceller is made.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from agent.media.audio.echo import ChunkSource
from agent.media.audio.reference import MAX_KEEP_S, REFERENCE_RATE, ReferenceTap

log = structlog.get_logger(__name__)

FRAME = REFERENCE_RATE // 100  # 10 ms: AEC3's frame
NOISE_SUPPRESSION_LEVELS: dict[str, int | None] = {
    "off": None, "low": 0, "moderate": 1, "high": 2, "very_high": 3,
}
"""WebRTC NS levels: about 6, 12, 18 and 21 dB of noise reduction."""
MAX_DELAY_MS = 400
"""The longest hold-back: the reference ring keeps 0.5 s, and a chunk must fit beside it."""
RESYNC_MS = 120
WINDOW_CHUNKS = 50
FRESH_AFTER_QUIET_MS = 500
BEHIND_LOG_S = 30.0
_REF_ON = 1e-5  # mean square (full scale 1) above which the reference sounds: about -50 dBFS
_POWER_SCALE = 1.0 / (FRAME * 32768.0 * 32768.0)


class EchoCancellerError(RuntimeError):
    """The canceller cannot run (pywebrtc-audio is missing)."""


@dataclass(frozen=True, slots=True)
class EchoSettings:
    """The canceller's settings (``[audio.aec]``).

    ``delay_ms`` None: the speaker's reported output latency. ``noise_suppression``: a key of
    `NOISE_SUPPRESSION_LEVELS`. ``gain_control``: WebRTC AGC2 on the cancelled signal, with
    ``gain_db`` fixed gain and adaptive gain up to ``max_gain_db``.
    """

    delay_ms: int | None = None
    noise_suppression: str = "off"
    gain_control: bool = False
    gain_db: float = 0.0
    max_gain_db: float = 30.0

    def __post_init__(self) -> None:
        if self.delay_ms is not None and not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise ValueError(f"delay_ms must be 0..{MAX_DELAY_MS}, got {self.delay_ms}")
        if self.noise_suppression not in NOISE_SUPPRESSION_LEVELS:
            raise ValueError(f"unknown noise suppression level {self.noise_suppression!r}")


def make_processor(settings: EchoSettings) -> Any:
    """A ``pywebrtc_audio.AudioProcessor`` for 16 kHz mono with AEC3 and the options."""
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise EchoCancellerError(
            'echo = "aec" needs the pywebrtc-audio package (pip install pywebrtc-audio), '
            f'or choose echo = "half_duplex": {exc}'
        ) from None
    level = NOISE_SUPPRESSION_LEVELS[settings.noise_suppression]
    return pywebrtc_audio.AudioProcessor(
        sample_rate=REFERENCE_RATE,
        num_channels=1,
        echo_cancellation=True,
        noise_suppression=level is not None,
        ns_level=0 if level is None else level,
        auto_gain_control=settings.gain_control,
        agc_gain_db=settings.gain_db,
        agc_max_gain_db=settings.max_gain_db,
    )


class EchoCancellingSource:
    """A source with the speaker's echo removed (the ``aec`` policy).

    ``reference`` is the speaker's tap. Chunks come out as they went in, minus the echo; a
    chunk that is not a whole number of 10 ms frames leaves its remainder for the next one.
    Counters: ``frames``, ``resyncs`` (pairing corrections), ``fresh_starts`` (resets at a
    reply's start).
    """

    def __init__(
        self,
        source: ChunkSource,
        reference: ReferenceTap,
        settings: EchoSettings | None = None,
    ) -> None:
        self.source = source
        self.reference = reference
        self.settings = settings or EchoSettings()
        self.sample_rate = source.sample_rate
        self.chunk_ms = source.chunk_ms
        if self.sample_rate != REFERENCE_RATE:
            raise ValueError(f"the canceller takes {REFERENCE_RATE} Hz audio, "
                             f"got {self.sample_rate}")
        self._apm = make_processor(self.settings)
        self.frames = 0
        self.resyncs = 0
        self.fresh_starts = 0
        self._carry = b""
        self._far: npt.NDArray[np.int16] = np.zeros(0, np.int16)
        self._end: int | None = None  # reference position paired with the last sample
        self._slack: list[int] = []
        self._dropped = self._source_dropped()
        self._last_resync_log = 0.0
        self._last_behind_log = -BEHIND_LOG_S
        self._quiet = 0  # frames of silent reference so far (a fresh processor needs no reset)
        self._floats: npt.NDArray[np.float32] = np.zeros((0, FRAME), np.float32)

    def _source_dropped(self) -> int:
        dropped = getattr(self.source, "dropped", 0)
        return dropped if isinstance(dropped, int) else 0

    @property
    def hold_samples(self) -> int:
        """How far the reference is held back, in samples."""
        if self.settings.delay_ms is not None:
            ms = float(self.settings.delay_ms)
        else:
            ms = min(MAX_DELAY_MS, max(0.0, self.reference.latency_s * 1000.0))
        return round(ms * REFERENCE_RATE / 1000)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The source's chunks with the echo cancelled."""
        async for chunk in self.source.chunks():
            out = self.process(chunk)
            if out:
                yield out

    def process(self, chunk: bytes) -> bytes:
        """Cancel the echo in one chunk (whole 10 ms frames; the rest waits for the next)."""
        if self._carry:
            chunk = self._carry + chunk
        usable = len(chunk) - len(chunk) % (2 * FRAME)
        self._carry = chunk[usable:]
        if usable == 0:
            return b""
        near = np.frombuffer(chunk, "<i2", usable // 2)
        n = near.size
        if self._far.size != n:
            self._far = np.zeros(n, np.int16)
        self._pair(n)
        assert self._end is not None
        self.reference.read_into(self._far, self._end)
        if self._reply_starts():
            self._apm.reset()
            self.fresh_starts += 1
        out: npt.NDArray[np.int16] = np.asarray(self._apm.process(near, self._far), np.int16)
        self.frames += n // FRAME
        return out.astype("<i2", copy=False).tobytes()

    def _pair(self, n: int) -> None:
        """Advance the reference position by ``n``; correct it when it drifted."""
        target = self.reference.written - self.hold_samples
        dropped = self._source_dropped()
        if self._end is None:
            self._end = target
        else:
            self._end += n + (dropped - self._dropped) * n
            if dropped > self._dropped:
                self._note_behind(dropped)
        self._dropped = dropped
        # A chunk handled late sees more reference written: the smallest slack over a window
        # is the true offset.
        self._slack.append(target - self._end)
        if len(self._slack) < WINDOW_CHUNKS:
            return
        slack, self._slack = min(self._slack), []
        if abs(slack) * 1000 > RESYNC_MS * REFERENCE_RATE:
            self._end += slack
            self.resyncs += 1
            now = time.monotonic()
            if now - self._last_resync_log >= 10.0:
                self._last_resync_log = now
                log.info("audio.aec.resync", moved_ms=round(slack * 1000 / REFERENCE_RATE),
                         resyncs=self.resyncs)

    def _note_behind(self, dropped: int) -> None:
        now = time.monotonic()
        if now - self._last_behind_log >= BEHIND_LOG_S:
            self._last_behind_log = now
            log.warning("audio.aec.behind", dropped=dropped,
                        hint='the microphone outruns the echo canceller on this CPU: lower '
                             'other load, or choose [audio] echo = "half_duplex"')

    def _reply_starts(self) -> bool:
        """Whether the reference turns on in this chunk after ``FRESH_AFTER_QUIET_MS`` of
        silence (counted in 10 ms frames across chunks)."""
        frames = self._far.size // FRAME
        if self._floats.shape[0] != frames:
            self._floats = np.zeros((frames, FRAME), np.float32)
        np.copyto(self._floats, self._far.reshape(frames, FRAME), casting="unsafe")
        powers = np.einsum("ij,ij->i", self._floats, self._floats).tolist()
        starts = False
        for power in powers:
            if power * _POWER_SCALE < _REF_ON:
                self._quiet += 1
                continue
            starts = starts or self._quiet >= FRESH_AFTER_QUIET_MS // 10
            self._quiet = 0
        return starts

    async def start(self) -> None:
        """Start the wrapped source."""
        await self.source.start()

    async def stop(self) -> None:
        """Stop the wrapped source."""
        await self.source.stop()
        log.info("audio.aec.stopped", frames=self.frames, resyncs=self.resyncs,
                 fresh_starts=self.fresh_starts)

    async def __aenter__(self) -> EchoCancellingSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = [
    "MAX_DELAY_MS",
    "MAX_KEEP_S",
    "NOISE_SUPPRESSION_LEVELS",
    "EchoCancellerError",
    "EchoCancellingSource",
    "EchoSettings",
    "make_processor",
]
