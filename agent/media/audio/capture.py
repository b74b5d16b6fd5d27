"""Microphone capture through PyAudio: a reader thread, conversion, and a drop-oldest queue.

The thread does blocking reads of ``read_ms`` (by default one chunk, 40 ms: a chunk is complete
the moment the read holding its last sample returns, and one read per chunk halves the per-read
cost of shorter reads at the same latency) and converts them at once (tens of microseconds per
read), so the only waits it ever does are on the device. Finished chunks go
into a bounded queue that, when the event loop falls behind, drops the *oldest* chunk: the
conversation stays real time instead of drifting behind the speaker. A device that fails to
open or errors while reading is closed and reopened with exponential backoff; the agent keeps
running meanwhile and ``chunks()`` simply yields nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import structlog

from agent.media.audio.convert import CaptureConverter, CaptureFormat
from agent.media.audio.device_thread import DeviceThread
from agent.media.audio.devices import AudioDeviceError, PortAudio

log = structlog.get_logger(__name__)


class PcmInput(Protocol):
    """An open capture stream: blocking reads of whole frames."""

    def read(self, frames: int) -> bytes:
        """Block until ``frames`` frames are available and return them."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class PyAudioInput:
    """A PyAudio input stream opened in the device's native format."""

    def __init__(
        self, device: str | int | None, fmt: CaptureFormat, frames_per_buffer: int
    ) -> None:
        self._host = PortAudio()
        try:
            info = self._host.find(device, want_input=True)
            index = int(info["index"])
            self.name = str(info["name"])
            if not self._host.supports(
                index, fmt.rate, fmt.channels, fmt.sample_format, want_input=True
            ):
                raise AudioDeviceError(
                    f"device {self.name!r} does not accept {fmt.rate} Hz, {fmt.channels} ch, "
                    f"{fmt.sample_format}; run `edge-agent devices` for what it takes"
                )
            self._stream: Any = self._host.pa.open(
                format=self._host.format_code(fmt.sample_format),
                channels=fmt.channels,
                rate=fmt.rate,
                input=True,
                input_device_index=index,
                frames_per_buffer=frames_per_buffer,
            )
        except BaseException:
            self._host.close()
            raise

    def read(self, frames: int) -> bytes:
        """Blocking read; overflows are counted by the caller's drop logic, not raised."""
        data: bytes = self._stream.read(frames, exception_on_overflow=False)
        return data

    def close(self) -> None:
        """Close the stream and this PortAudio instance."""
        try:
            self._stream.close()
        finally:
            self._host.close()


class DropOldestQueue:
    """A bounded thread-to-asyncio queue that drops its oldest item when full.

    ``put()`` never blocks and may be called from any thread; ``get()`` is awaited on the loop
    the queue was bound to. ``dropped`` counts items thrown away.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.dropped = 0
        self._items: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._wake_fd = -1

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop whose tasks will ``get()``."""
        self.unbind()
        self._loop = loop
        self._ready = asyncio.Event()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        loop.add_reader(self._wake_fd, self._on_wake)

    def unbind(self) -> None:
        """Detach from the loop (a no-op when not bound)."""
        fd, self._wake_fd = self._wake_fd, -1
        if fd >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(fd)
            os.close(fd)

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake_fd)
        if self._ready is not None:
            self._ready.set()

    def put(self, item: bytes) -> bool:
        """Append ``item``; return True if an old item was dropped to make room."""
        with self._lock:
            dropped = len(self._items) >= self.maxsize
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
        if self._wake_fd >= 0:
            # os.eventfd_write lets go of the GIL for the syscall, so the loop thread it wakes
            # finds the GIL free instead of waking only to wait for this thread to let go.
            with contextlib.suppress(OSError):  # unbound meanwhile
                os.eventfd_write(self._wake_fd, 1)
        return dropped

    @property
    def pending(self) -> int:
        """Items waiting."""
        return len(self._items)

    def get_nowait(self) -> bytes | None:
        """The oldest item, or None if empty."""
        with self._lock:
            return self._items.popleft() if self._items else None

    async def get(self, wait_s: float | None = None) -> bytes | None:
        """Wait (at most ``wait_s`` seconds, if given) for an item; None if none came."""
        assert self._ready is not None, "bind() the queue to a loop first"
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            self._ready.clear()
            item = self.get_nowait()
            if item is not None:
                return item
            if deadline is None:
                await self._ready.wait()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the wait completes, and chunks come 50 times a
            # second, so a cancelled reader would then go on reading.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._ready.wait()

    def clear(self) -> None:
        """Drop everything queued (not counted as drops)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class AudioCapture:
    """Real microphone: PyAudio in the device's native format, 16 kHz mono S16LE chunks out.

    ``device`` is an index, a name (exact or case-insensitive substring, e.g. ``"googlevoi"``
    or ``"USB"``) or None for the default input. ``fmt`` is the device's native format, usually
    from :func:`agent.media.audio.mics.load_mic_profile`.

    Use as ``async with AudioCapture(...) as mic: async for chunk in mic.chunks(): ...``.
    Counters: ``dropped`` (chunks lost because the consumer fell behind), ``reopens`` (device
    reopen attempts after a failure), ``chunks_captured``.

    ``open_input`` replaces PyAudio with another :class:`PcmInput` factory (a different audio
    stack, or a stream wrapper in tests).
    """

    def __init__(
        self,
        device: str | int | None = None,
        fmt: CaptureFormat | None = None,
        *,
        chunk_ms: int = 40,
        out_rate: int = 16000,
        read_ms: int | None = None,
        queue_ms: int = 2000,
        reopen_initial_s: float = 0.5,
        reopen_max_s: float = 10.0,
        open_input: Callable[[], PcmInput] | None = None,
    ) -> None:
        self.device = device
        self.fmt = fmt or CaptureFormat()
        self.chunk_ms = chunk_ms
        self.sample_rate = out_rate
        self.read_frames = max(1, self.fmt.rate * (read_ms or chunk_ms) // 1000)
        self.converter = CaptureConverter(self.fmt, out_rate, chunk_ms)
        self._queue = DropOldestQueue(max(1, queue_ms // chunk_ms))
        open_stream = open_input or (lambda: PyAudioInput(self.device, self.fmt, self.read_frames))
        self._thread = DeviceThread(
            "audio-capture",
            "audio.capture",
            device,
            open_stream=open_stream,
            serve=self._serve,
            wake=lambda: self._queue.put(b""),  # wake chunks() so it can notice the stop
            on_exit=self._log_stopped,
            reopen_initial_s=reopen_initial_s,
            reopen_max_s=reopen_max_s,
        )
        self._last_drop_log = 0.0
        self.chunks_captured = 0
        self.connected = False

    @property
    def dropped(self) -> int:
        """Chunks dropped because the consumer did not keep up."""
        return self._queue.dropped

    @property
    def reopens(self) -> int:
        """Device reopen attempts after a failure."""
        return self._thread.reopens

    async def start(self) -> None:
        """Start the reader thread (idempotent)."""
        if self._thread.running:
            return
        self._queue.bind(asyncio.get_running_loop())
        self._thread.start()

    async def stop(self, join_s: float = 2.0) -> None:
        """Stop the reader thread; waits at most ``join_s`` seconds for the device to let go."""
        await self._thread.stop(join_s)
        self._queue.unbind()  # its stop wake-up has been read: the loop ran during the join

    async def __aenter__(self) -> AudioCapture:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield chunks as they are captured, until ``stop()``; starts capture if needed."""
        await self.start()
        while not self._thread.stopping.is_set():
            # No timeout: stop() wakes the wait with b"", and a timer armed and cancelled for
            # every chunk would cost the loop more than the chunk itself.
            if self._queue.pending:
                # Behind: get() would return without suspending, and a consumer slower than
                # the device (an echo canceller on a busy CPU) would starve every other task,
                # the watchdog's among them. Let them run between chunks.
                await asyncio.sleep(0)
            chunk = await self._queue.get()
            if chunk:
                yield chunk

    def _serve(self, stream: PcmInput) -> None:
        self.connected = True
        log.info(
            "audio.capture.opened",
            device=self.device,
            rate=self.fmt.rate,
            channels=self.fmt.channels,
            format=self.fmt.sample_format,
        )
        self.converter.reset()
        try:
            self._pump(stream)
        except Exception as exc:
            log.warning("audio.capture.read_failed", device=self.device, error=str(exc))
        finally:
            self.connected = False

    def _log_stopped(self) -> None:
        log.info("audio.capture.stopped", device=self.device, dropped=self.dropped)

    def _pump(self, stream: PcmInput) -> None:
        while not self._thread.stopping.is_set():
            raw = stream.read(self.read_frames)
            if not raw:
                raise AudioDeviceError("device returned no data")
            for chunk in self.converter.feed(raw):
                self.chunks_captured += 1
                if self._queue.put(chunk):
                    self._log_drop()

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 5.0:  # one line per 5 s at most
            self._last_drop_log = now
            log.warning(
                "audio.dropped",
                device=self.device,
                dropped=self.dropped,
                queue_chunks=self._queue.maxsize,
            )
