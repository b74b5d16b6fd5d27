"""AudioCapture's thread, queue and reopen logic, behind its device seam.

The device here is a small in-memory :class:`PcmInput` that can fail on cue; the same capture
code runs against real PyAudio streams in tests/integration/media.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time

import pytest
import structlog

from agent.media.audio import AudioCapture, CaptureFormat
from agent.media.audio.capture import DropOldestQueue

FMT = CaptureFormat(rate=16000, channels=1, sample_format="int16", dc_block=False)
TIMEOUT = 10.0


class ScriptedInput:
    """Returns numbered reads; raises after ``fail_after`` reads; optional pacing."""

    def __init__(self, counter: list[int], fail_after: int | None = None, pace_s: float = 0.0):
        self.counter, self.fail_after, self.pace_s = counter, fail_after, pace_s
        self.reads = 0
        self.closed = False

    def read(self, frames: int) -> bytes:
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise OSError(-9981, "Input overflowed / device unplugged")
        if self.pace_s:
            time.sleep(self.pace_s)
        self.reads += 1
        self.counter[0] += 1
        value = self.counter[0] % 30000
        return value.to_bytes(2, "little") * frames

    def close(self) -> None:
        self.closed = True


async def test_chunks_flow_and_start_stop_are_idempotent() -> None:
    counter = [0]
    capture = AudioCapture(fmt=FMT, open_input=lambda: ScriptedInput(counter, pace_s=0.002))
    got: list[bytes] = []
    async with capture:
        await capture.start()
        async with asyncio.timeout(TIMEOUT):
            async for chunk in capture.chunks():
                got.append(chunk)
                if len(got) == 5:
                    break
    await capture.stop()
    assert [len(c) for c in got] == [1280] * 5
    # A read is one 40 ms chunk, so chunk k is read k+1: nothing lost or reordered.
    assert [int.from_bytes(c[:2], "little") for c in got] == [1, 2, 3, 4, 5]


async def test_shorter_reads_are_joined_into_whole_chunks() -> None:
    counter = [0]
    capture = AudioCapture(
        fmt=FMT, read_ms=20, open_input=lambda: ScriptedInput(counter, pace_s=0.002)
    )
    got: list[bytes] = []
    async with capture:
        async with asyncio.timeout(TIMEOUT):
            async for chunk in capture.chunks():
                got.append(chunk)
                if len(got) == 3:
                    break
    assert [len(c) for c in got] == [1280] * 3
    # Chunk k holds reads 2k+1 and 2k+2 (20 ms each), in order.
    assert [(c[0], c[640]) for c in got] == [(1, 2), (3, 4), (5, 6)]


async def test_device_that_fails_is_reopened_with_backoff() -> None:
    counter = [0]
    opens: list[float] = []
    inputs: list[ScriptedInput] = []

    def open_input() -> ScriptedInput:
        opens.append(time.monotonic())
        if len(opens) in (2, 3):
            raise OSError("[Errno -9996] Invalid input device (no default output device)")
        stream = ScriptedInput(counter, fail_after=2, pace_s=0.001)
        inputs.append(stream)
        return stream

    capture = AudioCapture(fmt=FMT, open_input=open_input, reopen_initial_s=0.05, reopen_max_s=0.4)
    got: list[bytes] = []
    with structlog.testing.capture_logs() as logs:
        async with capture:
            async with asyncio.timeout(TIMEOUT):
                async for chunk in capture.chunks():
                    got.append(chunk)
                    if len(got) == 4:  # 2 chunks per working open: needs the 2nd good open
                        break
    events = [e["event"] for e in logs]
    assert "audio.capture.read_failed" in events
    assert events.count("audio.capture.open_failed") == 2
    assert len(opens) >= 4
    gaps = [b - a for a, b in itertools.pairwise(opens[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18  # 0.05 after the read failure, then doubling
    assert all(s.closed for s in inputs[:-1])
    assert capture.reopens >= 3


async def test_slow_consumer_loses_the_oldest_chunks_and_they_are_counted() -> None:
    counter = [0]
    capture = AudioCapture(
        fmt=FMT, queue_ms=200, open_input=lambda: ScriptedInput(counter, pace_s=0.0005)
    )
    with structlog.testing.capture_logs() as logs:
        async with capture:
            await asyncio.sleep(0.3)  # the consumer is away; the thread keeps going
            first = await asyncio.wait_for(capture.chunks().__anext__(), TIMEOUT)
    assert capture.dropped > 0
    assert any(e["event"] == "audio.dropped" for e in logs)
    newest_possible = counter[0]
    # What is left is recent audio: the 5-chunk queue holds only the last ~5 reads.
    assert int.from_bytes(first[:2], "little") > newest_possible - 20


async def test_capture_thread_never_blocks_the_event_loop() -> None:
    counter = [0]
    capture = AudioCapture(fmt=FMT, open_input=lambda: ScriptedInput(counter, pace_s=0.01))
    lags: list[float] = []
    async with capture:
        for _ in range(20):
            before = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - before - 0.005)
    # Sleeps wake on time although the thread reads and converts all along.
    assert sorted(lags)[len(lags) // 2] < 0.02


async def test_a_consumer_slower_than_the_device_leaves_the_loop_to_other_tasks() -> None:
    counter = [0]
    capture = AudioCapture(fmt=FMT, open_input=lambda: ScriptedInput(counter, pace_s=0.001))
    ticks = 0

    async def heartbeat() -> None:  # the watchdog's kind of task
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    consumed = 0
    async with capture:
        await asyncio.sleep(0.1)  # a backlog: the queue is full from here on
        ticks = 0
        async with asyncio.timeout(TIMEOUT):
            async for _ in capture.chunks():
                time.sleep(0.005)  # noqa: ASYNC251 - work slower than the device, on the loop
                consumed += 1
                if consumed == 40:
                    break
    beat.cancel()
    assert capture.dropped > 0  # it was behind all along
    assert ticks >= 30, ticks  # and the other task still ran between chunks


def test_drop_oldest_queue_counts_drops_and_wakes_the_loop() -> None:
    async def main() -> list[bytes | None]:
        queue = DropOldestQueue(2)
        queue.bind(asyncio.get_running_loop())
        for item in (b"a", b"b", b"c"):
            queue.put(item)
        assert queue.dropped == 1
        waiter = asyncio.create_task(queue.get(wait_s=5))
        first = await waiter
        second = await queue.get(wait_s=5)
        late = asyncio.create_task(queue.get(wait_s=5))
        await asyncio.sleep(0.01)
        threading.Thread(target=queue.put, args=(b"d",)).start()
        third = await asyncio.wait_for(late, TIMEOUT)
        nothing = await queue.get(wait_s=0.01)
        return [first, second, third, nothing]

    assert asyncio.run(main()) == [b"b", b"c", b"d", None]


async def test_unknown_pyaudio_device_is_logged_and_retried_not_raised() -> None:
    pytest.importorskip("pyaudio")
    capture = AudioCapture("no-such-mic-anywhere", FMT, reopen_initial_s=0.05, reopen_max_s=0.05)
    with structlog.testing.capture_logs() as logs:
        await capture.start()
        await asyncio.sleep(0.5)
        await capture.stop()
    failures = [e for e in logs if e["event"] == "audio.capture.open_failed"]
    assert len(failures) >= 2
    assert "no-such-mic-anywhere" in failures[0]["error"]


def test_drop_oldest_queue_rebinds_without_leaking_its_wake_descriptor() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> tuple[bytes | None, int]:
        queue = DropOldestQueue(4)
        before = open_fds()
        for _ in range(50):
            queue.bind(asyncio.get_running_loop())
        queue.unbind()
        queue.unbind()
        queue.put(b"after unbind")  # no wake-up left to send: kept, and nothing raises
        leaked = open_fds() - before
        queue.bind(asyncio.get_running_loop())
        threading.Thread(target=queue.put, args=(b"woken",)).start()
        await asyncio.sleep(0.01)
        item = queue.get_nowait()
        queue.unbind()
        return item, leaked

    item, leaked = asyncio.run(main())
    assert item == b"after unbind"
    assert leaked == 0
