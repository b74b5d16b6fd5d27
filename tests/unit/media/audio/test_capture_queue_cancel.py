"""A reader of the capture queue stops when cancelled, even while chunks pour in.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives as the awaited
event completes; with chunks every few milliseconds a cancelled reader would then go on reading
and a stopping daemon would wait for it forever."""

from __future__ import annotations

import asyncio
import threading
import time

from agent.media.audio.capture import DropOldestQueue


async def test_a_reader_always_stops_when_cancelled() -> None:
    queue = DropOldestQueue(64)
    queue.bind(asyncio.get_running_loop())
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            queue.put(b"\x00\x00")
            time.sleep(0.0005)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()

    async def reader() -> None:
        while True:
            await queue.get(wait_s=0.5)

    stuck: list[asyncio.Task[None]] = []
    try:
        for n in range(300):
            task = asyncio.create_task(reader())
            await asyncio.sleep(0.001 * (n % 7))
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if not done:
                stuck.append(task)
    finally:
        stop.set()  # no more chunks: the stuck readers can be cancelled now
        producer.join(1.0)
        for task in stuck:
            task.cancel()
        if stuck:
            await asyncio.wait(stuck, timeout=2.0)
    assert not stuck, f"{len(stuck)} of 300 cancelled readers kept reading"
