"""Pace a frame source to one JPEG per interval for the Live API, and survive camera faults.

The loop only keeps time: opening the camera, capturing, the change check and the JPEG
encode all run in one dedicated camera thread, so a slow or wedged camera never blocks the
event loop (or the audio on it). Frames are captured on demand at each deadline, so what is
yielded is always the newest picture; nothing is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import queue
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import structlog
from numpy.typing import NDArray
from setproctitle import setthreadtitle

from agent.media.camera.change import ChangeDetector, luma_thumbnail
from agent.media.camera.frames import CameraError, FrameSource, JpegFrame, YuvFrame, frame_size
from agent.media.camera.jpeg import JpegEncoder

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_WIDTH = 768
DEFAULT_HEIGHT = 576
MAX_SIDE = 4096


@dataclass(frozen=True, slots=True)
class _Shot:
    """What one trip to the camera thread produced."""

    jpeg: bytes | None  # None: skipped as unchanged
    size: tuple[int, int]
    difference: float | None


class _CameraThread:
    """One daemon thread that runs every call on the source, in order.

    A daemon thread (not an executor) so that a camera wedged inside a driver call cannot
    hold up the process at exit; one thread because camera handles are not thread-safe.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        setthreadtitle("camera")  # what top -H and /proc/PID/task/*/comm show
        while (call := self._calls.get()) is not None:
            call()

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():  # the awaiting side timed out or was cancelled
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def call() -> None:
            try:
                result = fn()
            except BaseException as exc:
                _call_soon(loop, settle, None, exc)
            else:
                _call_soon(loop, settle, result, None)

        self._calls.put(call)
        return future

    def run_soon(self, fn: Callable[[], None]) -> None:
        """Queue ``fn`` with nobody waiting for its outcome."""
        self._calls.put(fn)

    def stop(self) -> None:
        """Let the thread end once the calls already queued have run."""
        self._calls.put(None)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    # RuntimeError: the loop has closed meanwhile, so nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


class CameraStream:
    """One JPEG per ``interval_s`` from ``source``, while not paused.

    Args:
        source: where frames come from; opened at ``width`` x ``height`` on first use.
        width, height: the frame size asked of the source (default 768x576: long edge 768,
            the Live API's recommended frame size, in the 4:3 shape of most cameras).
        interval_s: time between frames; deadlines are absolute, so work done per frame
            does not add up as drift, and missed deadlines are skipped, never bunched.
        quality: JPEG quality (1-100).
        skip_unchanged: skip a frame whose 32x24 luma thumbnail differs from the last frame
            sent by less than ``change_threshold`` levels on average (0-255 scale), unless
            ``max_interval_s`` has passed since the last send.
        retry_initial_s, retry_max_s: backoff after a camera fault, doubling up to the cap.
        capture_timeout_s: a trip to the camera longer than this counts as a fault.
        release_after_s: while paused this long, the camera is closed (freeing it and its
            power draw); it is reopened on resume.
    """

    def __init__(
        self,
        source: FrameSource,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        interval_s: float = 1.0,
        quality: int = 80,
        skip_unchanged: bool = False,
        change_threshold: float = 3.0,
        max_interval_s: float = 10.0,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        capture_timeout_s: float = 10.0,
        release_after_s: float = 30.0,
    ) -> None:
        for name, side in (("width", width), ("height", height)):
            if not 16 <= side <= MAX_SIDE or side % 2:
                raise ValueError(f"camera {name} must be even and 16..{MAX_SIDE}, got {side}")
        positive = {
            "interval_s": interval_s,
            "max_interval_s": max_interval_s,
            "retry_initial_s": retry_initial_s,
            "retry_max_s": retry_max_s,
            "capture_timeout_s": capture_timeout_s,
            "release_after_s": release_after_s,
        }
        for name, value in positive.items():
            if not value > 0 or math.isinf(value):
                raise ValueError(f"camera {name} must be a positive number, got {value}")
        if change_threshold < 0:
            raise ValueError(f"camera change_threshold must be >= 0, got {change_threshold}")
        self.source = source
        self.width, self.height = width, height
        self.interval_s = interval_s
        self.skip_unchanged = skip_unchanged
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.capture_timeout_s = capture_timeout_s
        self.release_after_s = release_after_s
        self._encoder = JpegEncoder(quality)
        self._detector = ChangeDetector(change_threshold, max_interval_s)
        self._live = asyncio.Event()  # set while live, ...
        self._live.set()
        self._paused_event = asyncio.Event()  # ... and its inverse, to wake a backoff sleep
        self._pauses = 0  # pauses so far: one that came and went before a sleep began counts
        self._opened = False  # touched only in the camera thread, like _size_warned
        self._size_warned = False
        self._thread: _CameraThread | None = None
        self._closed: asyncio.Future[None] | None = None
        self.sent = 0
        """Frames yielded."""
        self.skipped = 0
        """Frames captured but not yielded because they barely changed."""
        self.failures = 0
        """Camera faults (open or capture failures and timeouts), each followed by a retry."""

    @property
    def paused(self) -> bool:
        """Whether the stream is paused (nothing is captured)."""
        return not self._live.is_set()

    def pause(self) -> None:
        """Stop capturing: ``frames()`` yields nothing and the camera is left idle.

        ``pause`` and ``resume`` are called from the event loop that iterates ``frames()``.
        """
        if self._live.is_set():
            self._live.clear()
            self._pauses += 1
            self._paused_event.set()
            log.info("camera.paused", sent=self.sent, skipped=self.skipped)

    def resume(self) -> None:
        """Start capturing again; the first frame comes at once and is always sent."""
        if not self._live.is_set():
            self._paused_event.clear()
            self._live.set()
            log.info("camera.resumed")

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """Yield JPEG bytes, one per interval, until the consumer stops iterating.

        Camera faults are logged (``camera.failed``) and retried with capped exponential
        backoff; nothing is raised from here for them. Only one iteration may run at a time.
        """
        if self._thread is not None:
            raise RuntimeError("CameraStream.frames() is already being iterated")
        loop = asyncio.get_running_loop()
        self._thread = _CameraThread()
        self._closed = None
        backoff = self.retry_initial_s
        failing_since: int | None = None
        deadline = loop.time()
        try:
            while True:
                if not self._live.is_set():
                    await self._wait_while_paused()
                    deadline = loop.time()  # a fresh picture as soon as we are live again
                    self._detector.reset()
                await _sleep_until(loop, deadline)
                if not self._live.is_set():
                    continue
                started = loop.time()
                try:
                    shot = await self._in_camera_thread(functools.partial(self._shoot, started))
                except Exception as exc:  # anything from the camera thread is a camera fault
                    self.failures += 1
                    failing_since = failing_since or self.failures
                    log.warning(
                        "camera.failed",
                        error=str(exc) if isinstance(exc, CameraError) else repr(exc),
                        failures=self.failures,
                        retry_in_s=round(backoff, 3),
                    )
                    pauses = self._pauses  # a pause while the camera is released counts too
                    await self._release()
                    await self._sleep_unless_paused(backoff, pauses)
                    backoff = min(backoff * 2, self.retry_max_s)
                    deadline = loop.time()
                    continue
                if failing_since is not None:
                    log.info("camera.recovered", failed_attempts=self.failures - failing_since + 1)
                    failing_since, backoff = None, self.retry_initial_s
                deadline = _next_deadline(deadline, self.interval_s, loop.time())
                if not self._live.is_set():
                    continue  # paused while the camera was busy: the frame is not wanted
                if shot.jpeg is None:
                    self.skipped += 1
                    log.debug("camera.skipped", difference=shot.difference)
                    continue
                self.sent += 1
                yield shot.jpeg
        finally:
            thread, self._thread = self._thread, None
            if thread is not None:
                try:
                    self._closed = thread.submit(self._close_source)
                except RuntimeError:  # finalised with no running loop: close, unobserved
                    thread.run_soon(self._close_source)
                thread.stop()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until the camera released by a finished ``frames()`` is closed."""
        if self._closed is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._closed)
            except (TimeoutError, CameraError) as exc:
                log.warning("camera.close_failed", error=str(exc) or "timeout")

    # --- camera thread side ---------------------------------------------------------------

    def _shoot(self, now: float) -> _Shot:
        """Open if needed, capture, check for change, encode. Runs in the camera thread."""
        if not self._opened:
            self._call_source(lambda: self.source.open(self.width, self.height), "open")
            self._opened = True
            self._size_warned = False
            log.info(
                "camera.opened",
                source=type(self.source).__name__,
                size=f"{self.width}x{self.height}",
            )
        frame = self._call_source(self.source.capture, "capture")
        if not isinstance(frame, np.ndarray | YuvFrame | JpegFrame):
            raise CameraError(f"camera source returned {type(frame).__name__}, not a frame")
        size = frame_size(frame)
        if size != (self.width, self.height) and not self._size_warned:
            self._size_warned = True  # once per open: the frames still go out as they are
            log.warning(
                "camera.size_mismatch",
                requested=f"{self.width}x{self.height}",
                delivered=f"{size[0]}x{size[1]}",
            )
        try:
            thumb: NDArray[np.float32] | None = None
            if self.skip_unchanged:
                thumb = luma_thumbnail(frame)
                if not self._detector.should_send(thumb, now):
                    return _Shot(None, size, self._detector.last_difference)
            jpeg = self._encoder.encode(frame)
        except (ValueError, TypeError) as exc:  # a source that broke its contract
            raise CameraError(f"camera frame could not be encoded: {exc}") from exc
        if thumb is not None:
            self._detector.mark_sent(thumb, now)
        return _Shot(jpeg, size, self._detector.last_difference)

    def _call_source(self, fn: Callable[[], T], step: str) -> T:
        try:
            return fn()
        except CameraError:
            raise
        except Exception as exc:  # OSError from a driver, anything from a third-party stack
            raise CameraError(f"camera {step} failed: {type(exc).__name__}: {exc}") from exc

    def _close_source(self) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            self.source.close()
        except Exception as exc:
            log.warning("camera.close_failed", error=f"{type(exc).__name__}: {exc}")

    # --- loop side ------------------------------------------------------------------------

    async def _in_camera_thread(self, fn: Callable[[], T]) -> T:
        assert self._thread is not None
        future = self._thread.submit(fn)
        try:
            async with asyncio.timeout(self.capture_timeout_s):
                return await future
        except TimeoutError:
            raise CameraError(
                f"camera did not answer within {self.capture_timeout_s:g} s"
            ) from None

    async def _release(self) -> None:
        """Close the source so the next attempt reopens it from scratch."""
        try:
            await self._in_camera_thread(self._close_source)
        except CameraError as exc:
            log.warning("camera.close_failed", error=str(exc))

    async def _wait_while_paused(self) -> None:
        try:
            async with asyncio.timeout(self.release_after_s):
                await self._live.wait()
        except TimeoutError:
            log.info("camera.released", idle_s=self.release_after_s)
            await self._release()
            await self._live.wait()

    async def _sleep_unless_paused(self, seconds: float, pauses_before: int) -> None:
        """Sleep, but wake early if paused so a backoff never delays a pause; not at all if
        the stream was paused (and perhaps resumed already) since ``pauses_before``."""
        if self._pauses != pauses_before:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._paused_event.wait()


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _next_deadline(previous: float, interval: float, now: float) -> float:
    """The next tick on the grid that starts at ``previous``, skipping ticks already past."""
    deadline = previous + interval
    if deadline <= now:
        deadline += math.ceil((now - deadline) / interval + 1e-9) * interval
    return deadline
