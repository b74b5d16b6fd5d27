"""Speaker output through PyAudio: a jitter buffer drained by a writer thread in small blocks.

``write()`` only appends to the buffer (microseconds, safe on the event loop). The thread pulls
``block_ms`` of audio at a time, resamples it to the rate the device accepts and writes it with
a blocking PyAudio write. Because writes are small and the device buffer is PortAudio's low
latency default, ``flush()`` silences the speaker within one block plus the device buffer
(about 20 ms here; the goal is under 50 ms): it empties the buffer at once and the thread has
at most one block in flight.

An echo canceller taps the output (:meth:`AudioPlayback.tap`): each block goes to its
:class:`~agent.media.audio.reference.ReferenceTap` the moment the device takes it, and while a
tap is open the thread writes silence whenever the buffer is empty, so the speaker's stream,
and the reference with it, runs on without gaps between replies and after a flush.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from agent.media.audio.convert import PlaybackConverter, RateAdapters
from agent.media.audio.device_thread import DeviceThread
from agent.media.audio.devices import AudioDeviceError, PortAudio
from agent.media.audio.jitter import JitterBuffer
from agent.media.audio.reference import ReferenceTap

log = structlog.get_logger(__name__)

# Rates to try, in order, when the device refuses the model's 24 kHz.
FALLBACK_RATES = (48000, 44100, 16000, 32000, 22050)


class PcmOutput(Protocol):
    """An open playback stream of S16LE frames."""

    rate: int
    channels: int
    latency_s: float

    def write(self, pcm: bytes) -> None:
        """Block until the device has taken ``pcm``."""
        ...

    def close(self) -> None:
        """Release the device (pending audio is discarded)."""
        ...


class PyAudioOutput:
    """A PyAudio output stream at the first rate and channel count the device accepts."""

    def __init__(
        self,
        device: str | int | None,
        rate: int,
        channels: int | None,
        frames_per_buffer_ms: int,
    ) -> None:
        self._host = PortAudio()
        try:
            info = self._host.find(device, want_input=False)
            index = int(info["index"])
            self.name = str(info["name"])
            rates = [rate, *(r for r in FALLBACK_RATES if r != rate)]
            default = int(info["defaultSampleRate"])
            if default not in rates:
                rates.append(default)
            widths = [channels] if channels else [1, 2]
            choice = next(
                (
                    (r, c)
                    for r in rates
                    for c in widths
                    if self._host.supports(index, r, c, "int16", want_input=False)
                ),
                None,
            )
            if choice is None:
                raise AudioDeviceError(
                    f"output device {self.name!r} accepts none of {rates} Hz x {widths} ch int16"
                )
            self.rate, self.channels = choice
            self._stream: Any = self._host.pa.open(
                format=self._host.format_code("int16"),
                channels=self.channels,
                rate=self.rate,
                output=True,
                output_device_index=index,
                frames_per_buffer=max(1, self.rate * frames_per_buffer_ms // 1000),
            )
            self.latency_s = float(self._stream.get_output_latency())
        except BaseException:
            self._host.close()
            raise

    def write(self, pcm: bytes) -> None:
        """Blocking write; underflows (gaps between utterances) are not errors."""
        self._stream.write(pcm, exception_on_underflow=False)

    def close(self) -> None:
        """Close the stream (discarding what the device still holds) and PortAudio."""
        try:
            self._stream.close()
        finally:
            self._host.close()


class AudioPlayback:
    """Real speaker: jitter-buffered, resampled if 24 kHz is refused, instantly flushable.

    ``device`` is an index, a name (substring) or None for the default output. ``rate`` is the
    rate to try first (the model's 24 kHz by default); ``channels`` None tries mono, then stereo
    (I2S amplifiers often take stereo only). ``buffer_s`` bounds the jitter buffer: when full,
    the oldest queued audio is dropped and counted in ``dropped_ms``.

    ``is_playing`` is true while audio is queued or in the device; ``last_audio_at`` is the
    ``time.monotonic()`` at which the last block left the buffer (None before any).
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        rate: int = 24000,
        channels: int | None = None,
        block_ms: int = 10,
        buffer_s: float = 30.0,
        prebuffer_ms: int = 40,
        input_rate: int = 24000,
        reopen_initial_s: float = 0.5,
        reopen_max_s: float = 10.0,
        open_output: Callable[[], PcmOutput] | None = None,
    ) -> None:
        self.device = device
        self.input_rate = input_rate
        self.block_ms = block_ms
        self._block_bytes = input_rate * block_ms // 1000 * 2
        self._buffer = JitterBuffer(input_rate * 2, 2, max_s=buffer_s, prebuffer_ms=prebuffer_ms)
        self._rate_adapters = RateAdapters(input_rate)
        open_stream = open_output or (lambda: PyAudioOutput(self.device, rate, channels, block_ms))
        self._thread = DeviceThread(
            "audio-playback",
            "audio.playback",
            device,
            open_stream=open_stream,
            serve=self._serve,
            wake=self._buffer.clear,  # queued audio is dropped
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
        )
        self._opened = threading.Event()
        self._reset_converter = False
        self._odd = b""
        self._busy_until = 0.0
        self._last_overflow_log = 0.0
        self.last_audio_at: float | None = None
        self.output_rate: int | None = None
        self.output_channels: int | None = None
        self.output_latency_s = 0.0
        self._tap: ReferenceTap | None = None

    def tap(self) -> ReferenceTap:
        """The far-end reference for an echo canceller: every block written from now on, at
        16 kHz mono. From this call the speaker plays silence between replies (one tap per
        speaker; a second call returns the same one)."""
        if self._tap is None:
            tap = ReferenceTap(self.input_rate)
            tap.latency_s = self.output_latency_s
            self._tap = tap
        return self._tap

    @property
    def is_playing(self) -> bool:
        """True while audio is queued, being written, or still in the device buffer."""
        return self._buffer.nbytes > 0 or time.monotonic() < self._busy_until

    @property
    def buffered_s(self) -> float:
        """Seconds of audio waiting in the jitter buffer."""
        return self._buffer.seconds

    @property
    def dropped_ms(self) -> float:
        """Audio dropped because the jitter buffer overflowed, in milliseconds."""
        return self._buffer.dropped_bytes / (self.input_rate * 2) * 1000.0

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        """Queue mono S16LE audio; never blocks. Other rates (8-48 kHz) are converted to
        ``input_rate``; any other rate raises ``ValueError`` and queues nothing."""
        pcm = self._odd + pcm
        cut = len(pcm) - len(pcm) % 2
        whole, odd = pcm[:cut], pcm[cut:]  # an odd byte waits for its other half
        pieces = self._rate_adapters.pieces(whole, sample_rate)
        self._odd = odd
        dropped = sum(self._buffer.push(piece) for piece in pieces)
        if dropped:
            now = time.monotonic()
            if now - self._last_overflow_log >= 5.0:
                self._last_overflow_log = now
                log.warning("audio.playback.overflow", dropped_ms=round(self.dropped_ms))

    def flush(self) -> None:
        """Drop all queued audio now (barge-in); the speaker falls silent within ~20 ms."""
        dropped = self._buffer.clear()
        self._odd = b""
        self._reset_converter = True
        self._rate_adapters.reset()
        self._busy_until = min(self._busy_until, time.monotonic() + self._tail_s())
        if dropped:
            ms = round(dropped / (self.input_rate * 2) * 1000)
            log.debug("audio.playback.flushed", dropped_ms=ms)

    async def start(self, open_wait_s: float = 5.0) -> None:
        """Start the writer thread and wait (bounded) for the device to open."""
        if not self._thread.start():
            return
        if not await asyncio.to_thread(self._opened.wait, open_wait_s):
            log.warning("audio.playback.not_ready", device=self.device, waited_s=open_wait_s)

    async def stop(self, join_s: float = 2.0) -> None:
        """Stop the writer thread; queued audio is dropped."""
        await self._thread.stop(join_s)

    async def __aenter__(self) -> AudioPlayback:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _tail_s(self) -> float:
        return self.block_ms / 1000.0 + self.output_latency_s

    def _serve(self, out: PcmOutput) -> None:
        self.output_rate, self.output_channels = out.rate, out.channels
        self.output_latency_s = out.latency_s
        if self._tap is not None:
            self._tap.latency_s = out.latency_s
        log.info(
            "audio.playback.opened",
            device=self.device,
            rate=out.rate,
            channels=out.channels,
            latency_ms=round(out.latency_s * 1000, 1),
        )
        self._opened.set()
        try:
            self._pump(out, PlaybackConverter(self.input_rate, out.rate, out.channels))
        except Exception as exc:
            log.warning("audio.playback.write_failed", device=self.device, error=str(exc))

    def _pump(self, out: PcmOutput, converter: PlaybackConverter) -> None:
        playing = False
        silence = bytes(self._block_bytes)
        while not self._thread.stopping.is_set():
            block = self._buffer.pull(self._block_bytes)
            if self._reset_converter:  # flushed: forget the old tail instead of playing it
                self._reset_converter = False
                converter.reset()
                playing = False
            tap = self._tap
            if not block:
                if playing:  # utterance over: play the resampler's held-back tail
                    playing = False
                    tail = converter.drain()
                    if tail:
                        out.write(tail)
                if tap is not None:  # keep the stream (and the reference) running
                    out.write(converter.convert(silence))
                    tap.push(silence)
                    continue
                self._buffer.wait(0.005 if self._buffer.nbytes else 0.1)
                continue
            playing = True
            now = time.monotonic()
            self.last_audio_at = now
            self._busy_until = now + len(block) / (self.input_rate * 2) + self._tail_s()
            out.write(converter.convert(block))
            if tap is not None:
                tap.push(block)
