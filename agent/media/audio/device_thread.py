"""The thread that keeps one audio device open: reopened with backoff, stopped with a bounded wait.

Capture and playback differ only in what they do with an open stream; the rest is here. The
thread opens the stream and hands it to ``serve``, which returns when the stream fails or the
thread is stopping (it logs its own failure). The stream is then closed and, unless stopping,
opened again after a backoff that doubles up to ``reopen_max_s`` and starts over once a stream
has worked for a while. A device that cannot open never raises out of here: the agent keeps
running and the thread keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import structlog
from setproctitle import setthreadtitle

log = structlog.get_logger(__name__)


class Closeable(Protocol):
    def close(self) -> None:
        """Release the device."""
        ...


StreamT = TypeVar("StreamT", bound=Closeable)


class DeviceThread(Generic[StreamT]):
    """One daemon thread that opens, serves, closes and reopens a stream until stopped.

    Args:
        name: the thread's name (``audio-capture``).
        events: the prefix of the events it logs (``audio.capture``): ``.open_failed``,
            ``.reopening`` and ``.stop_timeout``.
        device: the device as configured, for the logs.
        open_stream: opens the device; any exception counts as a failed open.
        serve: uses an open stream until it fails or ``stopping`` is set.
        wake: called after ``stopping`` is set, to unblock whoever waits on the device side.
        on_exit: called in the thread as it ends.

    ``reopens`` counts failed opens and reopens after a stream failed.
    """

    def __init__(
        self,
        name: str,
        events: str,
        device: str | int | None,
        *,
        open_stream: Callable[[], StreamT],
        serve: Callable[[StreamT], None],
        wake: Callable[[], object] = lambda: None,
        on_exit: Callable[[], None] = lambda: None,
        reopen_initial_s: float = 0.5,
        reopen_max_s: float = 10.0,
    ) -> None:
        self.name = name
        self.events = events
        self.device = device
        self.open_stream = open_stream
        self.serve = serve
        self.wake = wake
        self.on_exit = on_exit
        self.reopen_initial_s = reopen_initial_s
        self.reopen_max_s = reopen_max_s
        self.stopping = threading.Event()
        self.reopens = 0
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread was started and not stopped since."""
        return self._thread is not None

    @property
    def ident(self) -> int | None:
        """The running thread's identifier (for per-thread CPU clocks), None when not running."""
        return None if self._thread is None else self._thread.ident

    def start(self) -> bool:
        """Start the thread; False (and nothing done) if it is already running."""
        if self._thread is not None:
            return False
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return True

    async def stop(self, join_s: float) -> None:
        """Stop the thread; waits at most ``join_s`` seconds for the device to let go."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.stopping.set()
        self.wake()
        await asyncio.to_thread(thread.join, join_s)
        if thread.is_alive():
            log.warning(f"{self.events}.stop_timeout", device=self.device, waited_s=join_s)

    def _run(self) -> None:
        setthreadtitle(self.name)  # what top -H and /proc/PID/task/*/comm show
        backoff = self.reopen_initial_s
        while not self.stopping.is_set():
            try:
                stream = self.open_stream()
            except Exception as exc:  # any device or library error: log, wait, retry
                self.reopens += 1
                log.warning(
                    f"{self.events}.open_failed",
                    device=self.device,
                    error=str(exc),
                    retry_in_s=backoff,
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.reopen_max_s)
                continue
            opened_at = time.monotonic()
            try:
                self.serve(stream)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
            if self.stopping.is_set():
                break
            if time.monotonic() - opened_at > 5 * self.reopen_initial_s:
                backoff = self.reopen_initial_s  # it worked for a while: start over
            self.reopens += 1
            log.info(f"{self.events}.reopening", device=self.device, retry_in_s=backoff)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, self.reopen_max_s)
        self.on_exit()
