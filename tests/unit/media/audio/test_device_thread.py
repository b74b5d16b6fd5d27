"""The device thread capture and playback share: backoff, reopen, and a stop that never hangs."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import structlog

from agent.media.audio.device_thread import DeviceThread

TIMEOUT = 10.0


class Stream:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def wait_for(condition: threading.Event) -> None:
    assert condition.wait(TIMEOUT), "the device thread did not get there"


async def test_failed_opens_back_off_doubling_up_to_the_cap_and_stop_cuts_the_wait() -> None:
    opens: list[float] = []
    fourth = threading.Event()

    def open_stream() -> Stream:
        opens.append(time.monotonic())
        if len(opens) == 4:
            fourth.set()
        raise OSError("no such device")

    device = DeviceThread(
        "test-device", "test.device", "mic", open_stream=open_stream, serve=lambda _: None,
        reopen_initial_s=0.05, reopen_max_s=0.1,
    )
    with structlog.testing.capture_logs() as logs:
        assert device.start()
        wait_for(fourth)
        await device.stop(join_s=TIMEOUT)  # the backoff wait now is 0.1 s at most
    gaps = [b - a for a, b in itertools.pairwise(opens[:4])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.095
    failures = [e for e in logs if e["event"] == "test.device.open_failed"]
    assert [e["retry_in_s"] for e in failures[:4]] == [0.05, 0.1, 0.1, 0.1]  # capped
    assert len(failures) == device.reopens == len(opens)
    assert failures[0]["error"] == "no such device" and failures[0]["device"] == "mic"
    assert not device.running


async def test_a_stream_that_fails_is_closed_and_reopened_until_stopped() -> None:
    streams: list[Stream] = []
    serving = threading.Event()
    woken: list[bool] = []
    exited = threading.Event()

    def open_stream() -> Stream:
        streams.append(Stream())
        return streams[-1]

    def serve(stream: Stream) -> None:
        if len(streams) < 3:
            return  # the stream failed at once
        serving.set()
        device.stopping.wait(TIMEOUT)

    device = DeviceThread(
        "test-device", "test.device", None, open_stream=open_stream, serve=serve,
        wake=lambda: woken.append(True), on_exit=exited.set, reopen_initial_s=0.01,
    )
    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(TIMEOUT):
            assert device.start()
            assert not device.start()  # already running: nothing more
            wait_for(serving)
            await device.stop(join_s=TIMEOUT)
    assert len(streams) == 3 and all(s.closed for s in streams)
    assert [e["event"] for e in logs].count("test.device.reopening") == 2
    assert device.reopens == 2
    assert woken == [True] and exited.is_set()


async def test_stop_gives_up_on_a_wedged_device_after_join_s() -> None:
    release = threading.Event()
    serving = threading.Event()

    def serve(stream: Stream) -> None:
        serving.set()
        release.wait(TIMEOUT)  # a driver call that ignores the stop

    device = DeviceThread("test-device", "test.device", 3, open_stream=Stream, serve=serve)
    device.start()
    wait_for(serving)
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        await device.stop(join_s=0.05)
        waited = time.monotonic() - started
    release.set()
    assert waited < TIMEOUT / 2  # well before the device lets go
    assert [e["event"] for e in logs] == ["test.device.stop_timeout"]
    assert logs[0]["device"] == 3 and logs[0]["waited_s"] == 0.05
