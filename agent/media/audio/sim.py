"""Simulated audio devices that ship with the package: WAV/tone/silence sources, WAV/null sinks.

They have the same interface as :class:`~agent.media.audio.capture.AudioCapture` and
:class:`~agent.media.audio.playback.AudioPlayback`, so the demo, the daemon and the tests can run
the whole agent without a sound card. With ``realtime=True`` sources yield one chunk per
``chunk_ms`` of wall time and sinks drain their jitter buffer at the real rate (so
``is_playing``, ``flush()`` and the echo gate behave as with a speaker); with ``realtime=False``
everything runs as fast as the consumer can take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import structlog

from agent.media.audio.convert import CaptureConverter, CaptureFormat, RateAdapters
from agent.media.audio.jitter import JitterBuffer
from agent.media.audio.wavfile import WavReader

log = structlog.get_logger(__name__)


class _PacedSource:
    """Shared pacing and lifecycle for the simulated sources."""

    def __init__(self, *, chunk_ms: int, sample_rate: int, realtime: bool) -> None:
        self.chunk_ms = chunk_ms
        self.sample_rate = sample_rate
        self.realtime = realtime
        self.dropped = 0  # same counter as AudioCapture; simulated sources never drop
        self._stopped = False

    async def start(self) -> None:
        """Nothing to open."""
        self._stopped = False

    async def stop(self) -> None:
        """End ``chunks()`` at its next chunk."""
        self._stopped = True

    async def __aenter__(self) -> _PacedSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _produce(self) -> list[bytes] | None:
        """The next chunks, or None at the end."""
        raise NotImplementedError

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield 16-bit mono chunks, paced to real time if ``realtime``."""
        self._stopped = False
        started = time.monotonic()
        sent = 0
        while not self._stopped:
            batch = self._produce()
            if batch is None:
                return
            for chunk in batch:
                if self.realtime:
                    # Absolute schedule: sleep jitter does not accumulate into drift.
                    due = started + sent * self.chunk_ms / 1000.0
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                else:
                    await asyncio.sleep(0)  # let other tasks run between chunks
                if self._stopped:
                    return
                sent += 1
                yield chunk


class WavFileSource(_PacedSource):
    """Chunks from a WAV file of any rate and channel count (mixed to mono, resampled).

    The file goes through the same :class:`CaptureConverter` as a real mic. ``loop=True``
    starts over at the end without a seam in the resampler. Bad files raise
    :class:`~agent.media.audio.wavfile.WavFormatError` at construction, naming the file.
    """

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        loop: bool = False,
        *,
        chunk_ms: int = 40,
        sample_rate: int = 16000,
        channel: int | str = "mix",
        gain_db: float = 0.0,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, sample_rate=sample_rate, realtime=realtime)
        self.path = Path(path)
        self.loop = loop
        self._reader = WavReader(self.path)
        info = self._reader.info
        self.fmt = CaptureFormat(
            rate=info.rate,
            channels=info.channels,
            sample_format="int16" if info.sample_format == "int16" else "int32",
            channel="mix" if channel == "mix" else int(channel),
            dc_block=False,
            gain_db=gain_db,
        )
        self._converter = CaptureConverter(self.fmt, sample_rate, chunk_ms)
        self._block_frames = info.rate // 10
        self._ended = False

    def _produce(self) -> list[bytes] | None:
        if self._ended:
            return None
        while True:
            raw = self._reader.read(self._block_frames)
            if raw:
                chunks = self._converter.feed(raw)
                if chunks:
                    return chunks
                continue
            if self.loop and self._reader.info.frames:
                self._reader.rewind()
                continue
            self._ended = True
            self._reader.close()
            return self._converter.flush(pad=True)


class ToneSource(_PacedSource):
    """A sine tone, phase-continuous across chunks; ``seconds=None`` plays forever."""

    def __init__(
        self,
        freq: float = 440.0,
        seconds: float | None = 1.0,
        *,
        level_dbfs: float = -20.0,
        realtime: bool = True,
        chunk_ms: int = 40,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, sample_rate=sample_rate, realtime=realtime)
        if not 0 < freq < sample_rate / 2:
            raise ValueError(f"tone frequency must be between 0 and {sample_rate / 2} Hz")
        self.freq = freq
        # level_dbfs is the RMS level; a sine's peak is 3 dB above its RMS.
        self.amplitude = 10.0 ** (level_dbfs / 20.0) * math.sqrt(2.0)
        self._total = None if seconds is None else round(seconds * 1000 / chunk_ms)
        self._n = 0
        self._step = chunk_ms * sample_rate // 1000

    def _produce(self) -> list[bytes] | None:
        if self._total is not None and self._n >= self._total:
            return None
        t = np.arange(self._n * self._step, (self._n + 1) * self._step) / self.sample_rate
        self._n += 1
        samples = np.rint(self.amplitude * 32767.0 * np.sin(2.0 * math.pi * self.freq * t))
        return [np.clip(samples, -32768, 32767).astype("<i2").tobytes()]


class SilenceSource(_PacedSource):
    """Digital silence; ``seconds=None`` plays forever."""

    def __init__(
        self,
        seconds: float | None = None,
        *,
        realtime: bool = True,
        chunk_ms: int = 40,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__(chunk_ms=chunk_ms, sample_rate=sample_rate, realtime=realtime)
        self._total = None if seconds is None else round(seconds * 1000 / chunk_ms)
        self._n = 0
        self._chunk = bytes(chunk_ms * sample_rate // 1000 * 2)

    def _produce(self) -> list[bytes] | None:
        if self._total is not None and self._n >= self._total:
            return None
        self._n += 1
        return [self._chunk]


class _ClockedSink:
    """A sink that behaves like a speaker: a jitter buffer drained at the real rate.

    With ``realtime=False`` audio goes straight to ``_emit`` and ``is_playing`` stays False.
    """

    def __init__(
        self,
        *,
        realtime: bool,
        sample_rate: int,
        block_ms: int = 10,
        buffer_s: float = 30.0,
        prebuffer_ms: int = 0,
    ) -> None:
        self.realtime = realtime
        self.sample_rate = sample_rate
        self.block_ms = block_ms
        self.last_audio_at: float | None = None
        self._buffer = JitterBuffer(sample_rate * 2, 2, max_s=buffer_s, prebuffer_ms=prebuffer_ms)
        self._adapters = RateAdapters(sample_rate)
        self._busy_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._odd = b""

    @property
    def is_playing(self) -> bool:
        """True while queued audio is still "playing" (realtime mode only)."""
        return self._buffer.nbytes > 0 or time.monotonic() < self._busy_until

    @property
    def dropped_ms(self) -> float:
        """Audio dropped because the buffer overflowed, in milliseconds."""
        return self._buffer.dropped_bytes / (self.sample_rate * 2) * 1000.0

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        """Queue (or, unpaced, write at once) mono S16LE audio; never blocks. Rates outside
        8-48 kHz raise ``ValueError`` and queue nothing."""
        whole, odd = _whole_samples(self._odd + pcm)
        pieces = self._adapters.pieces(whole, sample_rate)
        self._odd = odd
        for piece in pieces:
            if not self.realtime:
                if piece:
                    self.last_audio_at = time.monotonic()
                    self._emit(piece)
            else:
                self._buffer.push(piece)
        if self.realtime and self._wake is not None:
            self._wake.set()

    def flush(self) -> None:
        """Drop queued audio at once."""
        self._buffer.clear()
        self._odd = b""
        self._adapters.reset()
        self._busy_until = min(self._busy_until, time.monotonic())

    async def start(self) -> None:
        """Start the clock task (realtime mode)."""
        if self.realtime and self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._clock(), name=f"{type(self).__name__}-clock")

    async def stop(self) -> None:
        """Stop the clock; queued audio is dropped. Closes any file."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.realtime:  # written as given: include the resamplers' held-back tails
            for tail in self._adapters.drain():
                self._emit(tail)
        self._buffer.clear()
        self._close()

    async def __aenter__(self) -> _ClockedSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _clock(self) -> None:
        assert self._wake is not None
        block_bytes = self.sample_rate * self.block_ms // 1000 * 2
        next_at = time.monotonic()
        while True:
            pcm = self._buffer.pull(block_bytes)
            if not pcm:
                self._wake.clear()
                if self._buffer.nbytes:  # prebuffering: its time limit lets it go unwritten
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):
                            await self._wake.wait()
                else:  # nothing queued: only a write can change that
                    await self._wake.wait()
                next_at = time.monotonic()
                continue
            now = time.monotonic()
            self.last_audio_at = now
            seconds = len(pcm) / (self.sample_rate * 2)
            self._busy_until = now + seconds
            self._emit(pcm)
            next_at += seconds
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _emit(self, pcm: bytes) -> None:
        """Hand played audio to the destination."""

    def _close(self) -> None:
        """Release the destination."""


def _whole_samples(pcm: bytes) -> tuple[bytes, bytes]:
    """Split S16 bytes into whole samples and an odd trailing byte."""
    if len(pcm) % 2:
        return pcm[:-1], pcm[-1:]
    return pcm, b""


class WavFileSink(_ClockedSink):
    """Writes what it is given to a 16-bit mono WAV at ``sample_rate`` (other rates converted).

    ``realtime=True`` plays it out at the real rate through a jitter buffer, like a speaker
    (so flushes cut the file short, as they would cut the speaker); ``False`` writes at once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int = 24000,
        realtime: bool = False,
        block_ms: int = 10,
    ) -> None:
        super().__init__(realtime=realtime, sample_rate=sample_rate, block_ms=block_ms)
        self.path = Path(path)
        self.frames_written = 0
        self._wav: wave.Wave_write | None = None

    def _emit(self, pcm: bytes) -> None:
        if self._wav is None:
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (open until stop())
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.sample_rate)
        self._wav.writeframes(pcm)
        self.frames_written += len(pcm) // 2

    def _close(self) -> None:
        if self._wav is None:  # nothing played: still leave a valid, empty file
            self._emit(b"")
        assert self._wav is not None
        self._wav.close()
        self._wav = None
        seconds = self.frames_written / self.sample_rate
        log.info("audio.sink.closed", path=str(self.path), seconds=seconds)


class NullSink(_ClockedSink):
    """Discards audio; with ``realtime=True`` it still "plays" it, for the echo gate and tests."""

    def __init__(self, *, realtime: bool = False, sample_rate: int = 24000) -> None:
        super().__init__(realtime=realtime, sample_rate=sample_rate)
        self.frames_played = 0

    def _emit(self, pcm: bytes) -> None:
        self.frames_played += len(pcm) // 2
