"""A simulated room around the virtual ALSA devices, for a daemon run as a subprocess.

The daemon's PyAudio plays into ``vspk`` and records from ``vmic`` (see
agent/media/audio/virtual_alsa.py). :class:`VirtualRoom` sits between them, one thread on one
clock: every 10 ms it drains the speaker's pipe in real time (what a device would play; silence
when nothing came), turns it into the sound at the microphone (16 kHz, convolved with a room
impulse response: a delayed direct path, early reflections and an exponentially decaying
tail), adds noise and whatever a test has a person :meth:`say`, and every 40 ms writes one
capture read's worth into the mic's pipe. Echo, speech and mic signals are kept (bounded) so a
test can measure them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

Floats = npt.NDArray[np.float64]

RATE = 16000
TICK = RATE // 100  # 10 ms
MIC_BLOCK = 4 * TICK  # the capture's 40 ms read
MAX_KEEP_S = 600.0
DEVICE_BUFFER = 4  # ticks of speaker audio the room's device holds beyond the pipe


def room_impulse_response(rate: int = RATE, *, delay_ms: float = 12.0, gain: float = 0.5,
                          rt60_s: float = 0.25, length_s: float = 0.2, seed: int = 1) -> Floats:
    """A synthetic room: a direct path after ``delay_ms`` at ``gain``, six early reflections
    and a noise tail decaying 60 dB in ``rt60_s``."""
    rng = np.random.default_rng(seed)
    h = np.zeros(round(length_s * rate))
    d = round(delay_ms * rate / 1000)
    h[d] = gain
    for k in range(6):
        at = d + round(rng.uniform(2, 30) * rate / 1000)
        h[at] += gain * rng.uniform(-0.5, 0.5) * 0.8 ** k
    t = np.arange(h.size - d) / rate
    tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60_s) * gain * 0.08
    h[d:] += tail
    return h


def broadband_voice(seconds: float, seed: int = 0) -> Floats:
    """A broadband, speech-like far end (16 kHz, about -21 dBFS): band-limited noise under a
    4 Hz syllable envelope, a harder case for a canceller than the emulator's harmonic voice."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    noise = np.convolve(rng.standard_normal(n), np.hanning(9), "same")
    t = np.arange(n) / RATE
    env = 0.25 + 0.75 * np.clip(np.sin(2 * np.pi * 4 * t) * 1.4, 0, 1)
    return noise / np.std(noise) * env * 3000


class VirtualRoom:
    """The room between ``vspk`` and ``vmic`` for a daemon subprocess: ``env`` and ``fds``
    go to the child (its ALSA config under ``root``). ``echo_gain`` scales the speaker's path
    to the mic; ``noise`` is the RMS of the room's white noise (full scale 1)."""

    MIC_FD, SPEAKER_FD = 73, 72

    def __init__(self, root: Path, *, speaker_rate: int = 24000, rir: Floats | None = None,
                 noise: float = 10 ** (-60 / 20), seed: int = 0) -> None:
        from agent.media.audio import virtual_alsa as va

        devices = va.child_devices(root, self.MIC_FD, self.SPEAKER_FD)
        self.env, self.fds = devices.env, devices.fds
        self._speaker, self._mic = devices.speaker_end, devices.mic_end
        with contextlib.suppress(OSError):  # little audio hides in the pipe, like a device
            fcntl.fcntl(self._speaker, 1031, 4096)
        os.set_blocking(self._speaker, False)
        os.set_blocking(self._mic, False)
        self.speaker_rate = speaker_rate
        self.rir = room_impulse_response() if rir is None else rir
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self._resampler = soxr.ResampleStream(speaker_rate, RATE, 1, dtype="float32")
        self._tail = np.zeros(self.rir.size - 1)
        self._pending: deque[tuple[Floats, list[float]]] = deque()
        self._speech: Floats | None = None
        self._speech_at = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        keep = round(MAX_KEEP_S * RATE)
        self.echo: deque[Floats] = deque(maxlen=keep // TICK)
        self.near: deque[Floats] = deque(maxlen=keep // TICK)
        self.played: deque[Floats] = deque(maxlen=keep // TICK)
        self.speaker_on_at: float | None = None  # when the speaker last started to sound
        self.speaker_off_at: float | None = None
        self.underruns = 0  # ticks the speaker ran short while sounding
        self.gaps = 0  # ticks short of audio after the speaker's stream began (a tapped
        # speaker writes without pause, so each is a stall of the daemon or of this room)
        self._streaming = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="virtual-room")

    def start(self) -> None:
        self._thread.start()

    @property
    def speaker_sounds(self) -> bool:
        return self.speaker_on_at is not None and self.speaker_off_at is None

    def say(self, speech: Floats) -> list[float]:
        """Queue a person's ``speech`` (16 kHz floats); the list gets the monotonic time its
        first sample entered the mic."""
        started: list[float] = []
        with self._lock:
            self._pending.append((speech, started))
        return started

    def _run(self) -> None:
        speaker_bytes = self.speaker_rate * 2 // 100
        fifo = bytearray()
        resampled = np.zeros(0, np.float32)
        mic = np.zeros(MIC_BLOCK)
        filled = 0
        quiet_ticks = 0
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            tick += 1
            if self._stop.wait(max(0.0, start + tick * 0.01 - time.monotonic())):
                break
            # The speaker's own buffer: topped up from the pipe to DEVICE_BUFFER ticks, so a
            # late tick of this thread takes what is buffered instead of playing a gap.
            want = (DEVICE_BUFFER + 1) * speaker_bytes - len(fifo)
            try:
                while want > 0:
                    more = os.read(self._speaker, want)
                    if not more:
                        break
                    fifo += more
                    want -= len(more)
            except BlockingIOError:
                pass
            except OSError:
                break
            got = bytes(fifo[:speaker_bytes])
            del fifo[:speaker_bytes]
            if 0 < len(got) < speaker_bytes and self.speaker_sounds:
                self.underruns += 1
            if self._streaming and len(got) < speaker_bytes:
                self.gaps += 1
            self._streaming = self._streaming or len(got) == speaker_bytes
            played = np.zeros(speaker_bytes // 2, np.float32)
            if got:
                n = len(got) // 2
                played[:n] = np.frombuffer(got[: 2 * n], "<i2") / 32768.0
            # the resampler's output per call varies by a few samples: keep the rest
            resampled = np.concatenate((resampled, self._resampler.resample_chunk(played)))
            sound = np.zeros(TICK)
            take = min(TICK, resampled.size)
            sound[:take] = resampled[:take]
            resampled = resampled[take:]
            now = time.monotonic()
            if float(np.mean(sound**2)) > 1e-6:
                quiet_ticks = 0
                if self.speaker_on_at is None or self.speaker_off_at is not None:
                    self.speaker_on_at, self.speaker_off_at = now, None
            else:
                quiet_ticks += 1
                if quiet_ticks == 20 and self.speaker_on_at is not None:
                    self.speaker_off_at = now
            full = np.convolve(sound, self.rir)
            full[: self._tail.size] += self._tail
            echo, self._tail = full[:TICK], full[TICK:]
            near = self._next_speech(now)
            self.played.append(sound)
            self.echo.append(echo)
            self.near.append(near)
            mic[filled : filled + TICK] = echo + near + self._rng.standard_normal(TICK) * self.noise
            filled += TICK
            if filled == MIC_BLOCK:
                filled = 0
                pcm = np.clip(np.round(mic * 32767), -32768, 32767).astype("<i2").tobytes()
                try:
                    os.write(self._mic, pcm)
                except BlockingIOError:
                    pass  # the daemon is not reading: a device would overrun too
                except OSError:
                    break

    def _next_speech(self, now: float) -> Floats:
        near = np.zeros(TICK)
        at = 0
        while at < TICK:
            if self._speech is None:
                with self._lock:
                    if not self._pending:
                        break
                    self._speech, started = self._pending.popleft()
                started.append(now + at / RATE)
                self._speech_at = 0
            take = min(TICK - at, self._speech.size - self._speech_at)
            near[at : at + take] = self._speech[self._speech_at : self._speech_at + take]
            at += take
            self._speech_at += take
            if self._speech_at >= self._speech.size:
                self._speech = None
        return near

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        for fd in (self._speaker, self._mic, *self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
