"""CameraStream: pacing, freshness, change skipping, fault recovery, pause and resume."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import simplejpeg
from structlog.testing import capture_logs

from agent.media.camera import (
    CameraError,
    CameraStream,
    CameraUnavailable,
    Frame,
)
from agent.media.camera.sim import TestPatternSource
from agent.media.camera.stream import _next_deadline

WAIT_S = 5.0  # upper bound for any wait in this file, so nothing can hang


def solid(value: int, width: int = 64, height: int = 48) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


class ScriptedSource:
    """A FrameSource whose frames, faults and delays the test decides, with a call log."""

    def __init__(
        self,
        frames: Callable[[int], Frame] | None = None,
        *,
        fail_captures: set[int] | None = None,
        fail_opens: int = 0,
        capture_delay_s: float = 0.0,
        close_delay_s: float = 0.0,
        error: Callable[[], BaseException] = lambda: CameraError("injected fault"),
    ) -> None:
        self._frames = frames or (lambda n: solid(n % 256))
        self.fail_captures = fail_captures or set()
        self.fail_opens = fail_opens
        self.capture_delay_s = capture_delay_s
        self.close_delay_s = close_delay_s
        self.error = error
        self.opens = 0
        self.closes = 0
        self.captures = 0  # capture() calls, failed ones included
        self.capture_times: list[float] = []
        self.sizes: list[tuple[int, int]] = []
        self.is_open = False

    def open(self, width: int, height: int) -> None:
        self.opens += 1
        self.sizes.append((width, height))
        if self.opens <= self.fail_opens:
            raise CameraUnavailable("no camera (injected)")
        self.is_open = True

    def capture(self) -> Frame:
        assert self.is_open, "capture on a closed source"
        index = self.captures
        self.captures += 1
        self.capture_times.append(time.monotonic())
        if self.capture_delay_s:
            time.sleep(self.capture_delay_s)
        if index in self.fail_captures:
            raise self.error()
        return self._frames(index)

    def close(self) -> None:
        time.sleep(self.close_delay_s)
        self.closes += 1
        self.is_open = False


async def take(stream: CameraStream, count: int) -> list[tuple[float, bytes]]:
    """Collect ``count`` frames with their arrival time, bounded by WAIT_S."""
    got: list[tuple[float, bytes]] = []

    async def run() -> None:
        async with contextlib.aclosing(stream.frames()) as frames:
            async for jpeg in frames:
                got.append((time.monotonic(), jpeg))
                if len(got) == count:
                    return

    await asyncio.wait_for(run(), WAIT_S)
    await stream.aclose()
    return got


async def wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def consuming(stream: CameraStream) -> AsyncIterator[list[bytes]]:
    """Run a consumer in the background; yields the list it fills."""
    received: list[bytes] = []

    async def run() -> None:
        async with contextlib.aclosing(stream.frames()) as frames:
            async for jpeg in frames:
                received.append(jpeg)

    task = asyncio.create_task(run())
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_S)
        await stream.aclose()


def mean_value(jpeg: bytes) -> float:
    return float(simplejpeg.decode_jpeg(jpeg).mean())


# --- pacing -------------------------------------------------------------------------------


async def test_test_pattern_paced_at_interval_and_every_jpeg_decodes_to_size() -> None:
    interval = 0.1
    stream = CameraStream(TestPatternSource(), interval_s=interval)
    got = await take(stream, 8)

    for _, jpeg in got:
        image = simplejpeg.decode_jpeg(jpeg)
        assert image.shape == (576, 768, 3)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    print(
        f"\ninterval {interval}s: mean gap {statistics.mean(gaps) * 1000:.1f} ms, "
        f"jitter (stdev) {statistics.pstdev(gaps) * 1000:.2f} ms"
    )
    # Order and count only: frames never bunch up, and 7 gaps span at least ~7 intervals.
    assert min(gaps) > interval * 0.5
    assert got[-1][0] - got[0][0] >= 7 * interval * 0.9
    assert stream.sent == 8 and stream.failures == 0 and stream.skipped == 0
    # Every frame is a different picture (the clock is drawn in and the bars move).
    assert len({jpeg for _, jpeg in got}) == 8


async def test_custom_size_reaches_the_source_and_the_jpeg() -> None:
    source = ScriptedSource(lambda n: solid(100, 320, 240))
    got = await take(CameraStream(source, width=320, height=240, interval_s=0.01), 2)
    assert source.sizes == [(320, 240)]
    assert simplejpeg.decode_jpeg_header(got[0][1])[:2] == (240, 320)


def test_deadlines_stay_on_the_grid_and_skip_missed_ticks() -> None:
    assert _next_deadline(10.0, 1.0, now=10.2) == 11.0  # on time: the next tick
    assert _next_deadline(10.0, 1.0, now=11.0) == 12.0  # exactly on a tick: move past it
    assert _next_deadline(10.0, 1.0, now=13.5) == 14.0  # late: skip, never bunch
    assert _next_deadline(10.0, 0.1, now=10.05) == pytest.approx(10.1)


async def test_work_per_frame_does_not_add_drift() -> None:
    # Each capture takes 80 ms of a 100 ms interval. Sleeping the interval after the work
    # would give 180 ms gaps; deadlines keep them at 100 ms.
    source = ScriptedSource(capture_delay_s=0.08)
    got = await take(CameraStream(source, width=64, height=48, interval_s=0.1), 6)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    assert statistics.mean(gaps) < 0.14, gaps


async def test_a_slow_consumer_gets_fresh_frames_not_a_backlog() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.02)
    resumed_at: list[float] = []
    async with contextlib.aclosing(stream.frames()) as frames:
        async for _ in frames:
            if len(resumed_at) == 4:
                break
            await asyncio.sleep(0.15)  # a slow network send
            resumed_at.append(time.monotonic())
    await stream.aclose()
    # One capture per frame taken, and each captured only after the consumer asked again.
    assert source.captures == 5
    for asked, captured in zip(resumed_at, source.capture_times[1:], strict=True):
        assert captured >= asked


async def test_the_event_loop_keeps_running_while_the_camera_is_slow() -> None:
    source = ScriptedSource(capture_delay_s=0.3)
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    beat_task = asyncio.create_task(heartbeat())
    try:
        await take(stream, 2)
    finally:
        beat_task.cancel()
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert len(beats) > 10
    assert max(gaps) < 0.25  # a capture blocking the loop would show a 0.3 s gap


# --- change skipping ----------------------------------------------------------------------


async def test_unchanged_frames_are_skipped_and_a_changed_one_is_sent() -> None:
    black, white = solid(0), solid(255)
    script = [black, black, black, white, white, black]
    source = ScriptedSource(lambda n: script[min(n, len(script) - 1)])
    stream = CameraStream(
        source, width=64, height=48, interval_s=0.01, skip_unchanged=True, max_interval_s=60
    )
    async with consuming(stream) as received:
        await wait_for(lambda: source.captures >= len(script))
    assert [round(mean_value(j)) for j in received[:3]] == [0, 255, 0]
    assert stream.skipped >= 3  # two repeats of black, one of white


async def test_noise_below_the_threshold_is_skipped() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(60, 200, size=(48, 64, 3), dtype=np.uint8)

    def noisy(n: int) -> np.ndarray:
        jitter = rng.integers(-2, 3, size=base.shape)
        return np.asarray(np.clip(base.astype(int) + jitter, 0, 255), dtype=np.uint8)

    source = ScriptedSource(noisy)
    stream = CameraStream(
        source, width=64, height=48, interval_s=0.01, skip_unchanged=True, max_interval_s=60
    )
    async with consuming(stream) as received:
        await wait_for(lambda: source.captures >= 8)
    assert len(received) == 1 and stream.skipped >= 7


async def test_max_interval_forces_a_send_of_a_static_scene() -> None:
    source = TestPatternSource(clock=lambda: 1_700_000_000.0)  # a clock that stands still
    stream = CameraStream(
        source, interval_s=0.02, skip_unchanged=True, max_interval_s=0.1, width=160, height=120
    )
    got = await take(stream, 3)
    assert len({jpeg for _, jpeg in got}) == 1  # the same picture, re-sent
    assert stream.skipped >= 2  # at 20 ms per frame, several were skipped in between
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    assert min(gaps) >= 0.1 * 0.9


async def test_skipping_is_off_by_default() -> None:
    source = ScriptedSource(lambda n: solid(10))
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    await take(stream, 4)
    assert stream.sent == 4 and stream.skipped == 0


# --- faults -------------------------------------------------------------------------------


async def test_capture_faults_back_off_exponentially_then_recover() -> None:
    source = ScriptedSource(fail_captures={1, 2, 3, 4})
    stream = CameraStream(
        source, width=64, height=48, interval_s=0.01, retry_initial_s=0.01, retry_max_s=0.03
    )
    with capture_logs() as logs:
        got = await take(stream, 3)
    assert len(got) == 3
    assert stream.failures == 4 and stream.sent == 3
    failed = [e for e in logs if e["event"] == "camera.failed"]
    assert [e["retry_in_s"] for e in failed] == [0.01, 0.02, 0.03, 0.03]  # doubled, capped
    assert all("injected fault" in e["error"] for e in failed)
    recovered = [e for e in logs if e["event"] == "camera.recovered"]
    assert len(recovered) == 1 and recovered[0]["failed_attempts"] == 4
    # Each fault closed the source, and the next attempt opened it again.
    assert source.opens == 5 and source.closes == 5  # 4 after faults, 1 at the end


async def test_a_missing_camera_is_retried_until_it_appears() -> None:
    source = ScriptedSource(fail_opens=3)
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=0.005)
    got = await take(stream, 1)
    assert len(got) == 1 and stream.failures == 3 and source.opens == 4


@pytest.mark.parametrize(
    "error",
    [
        lambda: OSError(5, "Input/output error"),
        lambda: RuntimeError("libcamera said no"),
        lambda: ValueError("odd"),
    ],
)
async def test_any_source_exception_is_a_fault_not_a_crash(
    error: Callable[[], BaseException],
) -> None:
    source = ScriptedSource(fail_captures={0}, error=error)
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=0.005)
    got = await take(stream, 1)
    assert len(got) == 1 and stream.failures == 1


async def test_a_frame_that_cannot_be_encoded_is_a_fault() -> None:
    bad = np.zeros((48, 64), dtype=np.uint8)  # greyscale: breaks the RGB contract
    source = ScriptedSource(lambda n: bad if n == 0 else solid(5))
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=0.005)
    with capture_logs() as logs:
        got = await take(stream, 1)
    assert len(got) == 1 and stream.failures == 1
    assert "could not be encoded" in next(e for e in logs if e["event"] == "camera.failed")["error"]


async def test_a_source_returning_nonsense_is_a_fault() -> None:
    source = ScriptedSource(lambda n: None if n == 0 else solid(5))  # type: ignore[arg-type,return-value]
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=0.005)
    with capture_logs() as logs:
        got = await take(stream, 1)
    assert len(got) == 1 and stream.failures == 1
    assert "returned NoneType" in next(e for e in logs if e["event"] == "camera.failed")["error"]


async def test_a_frame_of_another_size_is_sent_and_reported_once() -> None:
    source = ScriptedSource(lambda n: solid(5, 32, 24))
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    with capture_logs() as logs:
        got = await take(stream, 3)
    assert simplejpeg.decode_jpeg_header(got[0][1])[:2] == (24, 32)
    mismatches = [e for e in logs if e["event"] == "camera.size_mismatch"]
    assert len(mismatches) == 1 and mismatches[0]["delivered"] == "32x24"


async def test_a_wedged_camera_times_out_and_the_stream_carries_on() -> None:
    release = threading.Event()

    def frames(n: int) -> Frame:
        if n == 0:
            release.wait(WAIT_S)  # a driver call that does not come back for a while
        return solid(50)

    source = ScriptedSource(frames)
    stream = CameraStream(
        source, width=64, height=48, interval_s=0.01, capture_timeout_s=0.1, retry_initial_s=0.01
    )
    async with consuming(stream) as received:
        await wait_for(lambda: stream.failures >= 1)
        assert received == []
        release.set()
        await wait_for(lambda: len(received) >= 2)
    assert stream.failures >= 1


# --- pause and resume ---------------------------------------------------------------------


async def test_pause_stops_all_capture_and_resume_sends_at_once() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.2)
    async with consuming(stream) as received:
        await wait_for(lambda: len(received) >= 1)
        await asyncio.sleep(0.05)  # the stream now sleeps until its next deadline
        captures = source.captures
        stream.pause()
        assert stream.paused
        await asyncio.sleep(0.4)  # two deadlines pass while paused
        assert source.captures == captures and len(received) == 1
        stream.resume()
        resumed = time.monotonic()
        await wait_for(lambda: len(received) == 2)
        # The first frame after resume is captured at once, not at the old schedule.
        assert resumed <= source.capture_times[captures] < resumed + 0.15


async def test_a_stream_created_paused_captures_nothing() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    stream.pause()
    async with consuming(stream) as received:
        await asyncio.sleep(0.1)
        assert source.opens == 0 and source.captures == 0 and received == []
        stream.resume()
        await wait_for(lambda: len(received) >= 1)


async def test_a_long_pause_releases_the_camera_and_resume_reopens_it() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, release_after_s=0.05)
    async with consuming(stream) as received:
        await wait_for(lambda: len(received) >= 1)
        stream.pause()
        await wait_for(lambda: source.closes == 1)
        assert not source.is_open
        stream.resume()
        await wait_for(lambda: len(received) >= 2)
        assert source.opens == 2


async def test_pause_during_backoff_wakes_the_stream_at_once() -> None:
    source = ScriptedSource(fail_captures={0})
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=30)
    async with consuming(stream) as received:
        await wait_for(lambda: stream.failures == 1)
        stream.pause()
        stream.resume()  # the 30 s backoff must not outlive the pause
        await wait_for(lambda: len(received) >= 1, timeout_s=10.0)  # far below the backoff


async def test_a_pause_and_resume_while_the_camera_is_released_cut_the_backoff_short() -> None:
    # The pause comes and goes while the failed camera is still being closed, before the
    # backoff's sleep begins: the stream must not then sleep the whole backoff.
    source = ScriptedSource(fail_captures={0}, close_delay_s=0.5)
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=30)
    async with consuming(stream) as received:
        await wait_for(lambda: stream.failures == 1)
        assert source.closes == 0  # the camera is still being closed
        stream.pause()
        stream.resume()
        await wait_for(lambda: len(received) >= 1, timeout_s=10.0)  # far below the backoff


# --- lifecycle ----------------------------------------------------------------------------


async def test_the_source_is_closed_when_the_consumer_stops() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    await take(stream, 2)
    assert source.closes == 1 and not source.is_open
    # frames() can be iterated again afterwards, reopening the camera.
    await take(stream, 1)
    assert source.opens == 2 and source.closes == 2


def test_a_generator_finalised_without_a_loop_still_closes_the_camera() -> None:
    source = ScriptedSource()
    stream = CameraStream(source, width=64, height=48, interval_s=0.01)
    frames = stream.frames()

    async def first() -> bytes:
        return await anext(frames)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(first())
    finally:
        loop.close()  # the generator is still suspended at its yield
    with contextlib.suppress(RuntimeError, StopIteration):
        frames.aclose().send(None)  # what a garbage collector's finaliser amounts to
    deadline = time.monotonic() + WAIT_S
    while source.closes == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert source.closes == 1


async def test_a_second_concurrent_iteration_is_refused() -> None:
    stream = CameraStream(ScriptedSource(), width=64, height=48, interval_s=0.01)
    async with consuming(stream) as received:
        await wait_for(lambda: len(received) >= 1)
        with pytest.raises(RuntimeError, match="already"):
            await anext(stream.frames())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 767}, "width"),
        ({"height": 0}, "height"),
        ({"interval_s": 0}, "interval_s"),
        ({"quality": 0}, "quality"),
        ({"change_threshold": -1}, "change_threshold"),
        ({"max_interval_s": float("inf")}, "max_interval_s"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CameraStream(ScriptedSource(), **kwargs)
