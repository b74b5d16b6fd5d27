"""A small pool of daemon threads that runs blocking GPIO work for the event loop.

Why not `asyncio.to_thread`: the default executor's threads are joined at interpreter exit,
so one custom handler stuck in a blocking call would hang shutdown. These workers are daemon
threads, started on demand up to a limit, and results come back through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ThreadRunner"]

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the caller gave up (cancelled); nothing to deliver
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class ThreadRunner:
    """Run callables on up to ``max_workers`` daemon threads; results as asyncio futures."""

    def __init__(self, max_workers: int = 4, name: str = "gpio") -> None:
        self._max = max(1, max_workers)
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._queued = 0
        self._closed = False

    def submit(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        """Queue ``fn``; the returned future (bound to ``loop``) gets its result or exception.

        Cancelling the future does not stop ``fn``: it runs to its end in its thread.
        """
        fut: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the runner is closed")
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
        self._jobs.put((fn, fut, loop))
        return fut

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._queued -= 1
            if job is None:
                return
            fn, fut, loop = job
            try:
                if self._closed:  # queued before close(): the hardware is being released
                    raise RuntimeError("the runner was closed before this job started")
                ok, value = True, fn()
            except BaseException as exc:  # delivered to the awaiting coroutine
                ok, value = False, exc
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, fut, ok, value)

    def close(self, timeout: float = 1.0) -> None:
        """Stop the workers once their current job ends; wait up to ``timeout`` in all.

        Jobs still queued are not run: their futures get a `RuntimeError`.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        per_thread = timeout / max(1, len(threads))
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(per_thread)
