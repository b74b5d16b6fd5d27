"""sd_notify over real AF_UNIX datagram sockets (a path and an abstract name), and the
watchdog task, including a stalled event loop that must stop the pings."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent import systemd
from agent.systemd import Notifier, watchdog_interval, watchdog_task


class Receiver:
    """A NOTIFY_SOCKET as systemd has it: a bound datagram socket; a thread records every
    message with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return [m for _, m in self.messages]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def path_receiver(tmp_path: Path) -> Iterator[Receiver]:
    receiver = Receiver(str(tmp_path / "notify.sock"))
    yield receiver
    receiver.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    receiver = Receiver(f"@edge-agent-test-{uuid.uuid4().hex}")
    yield receiver
    receiver.close()


def test_ready_and_status_reach_a_socket_path(path_receiver: Receiver) -> None:
    notifier = Notifier(path_receiver.address)
    assert notifier.ready(status="devices open, connecting")
    assert notifier.status("live: 2 turns, 1 tool call")
    assert notifier.stopping()
    assert path_receiver.wait_for(3) == [
        "READY=1\nSTATUS=devices open, connecting",
        "STATUS=live: 2 turns, 1 tool call",
        "STOPPING=1",
    ]
    assert (notifier.sent, notifier.failures) == (3, 0)
    notifier.close()


def test_abstract_socket_names_work(abstract_receiver: Receiver) -> None:
    notifier = Notifier(abstract_receiver.address)
    assert notifier.watchdog_ping()
    assert notifier.notify(READY=1, MAINPID=os.getpid())
    assert abstract_receiver.wait_for(2) == ["WATCHDOG=1", f"READY=1\nMAINPID={os.getpid()}"]
    notifier.close()


def test_the_socket_comes_from_the_environment(path_receiver: Receiver) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": path_receiver.address})
    assert notifier.enabled and notifier.ready()
    assert path_receiver.wait_for(1) == ["READY=1"]
    notifier.close()


def test_module_functions_use_the_process_notifier(path_receiver: Receiver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.address)
    monkeypatch.setattr(systemd, "_default", None)
    assert systemd.ready() and systemd.status("ok") and systemd.watchdog_ping()
    assert systemd.reloading() and systemd.stopping()
    messages = path_receiver.wait_for(5)
    assert messages[:3] == ["READY=1", "STATUS=ok", "WATCHDOG=1"]
    assert messages[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert messages[4] == "STOPPING=1"
    systemd.default_notifier().close()
    monkeypatch.setattr(systemd, "_default", None)


def test_a_newline_cannot_inject_another_assignment(path_receiver: Receiver) -> None:
    notifier = Notifier(path_receiver.address)
    notifier.status("reconnecting\nREADY=1")
    assert path_receiver.wait_for(1) == ["STATUS=reconnecting READY=1"]
    notifier.close()


def test_status_is_redacted_like_the_logs_and_bounded(path_receiver: Receiver) -> None:
    """STATUS= is readable by every local user: a key in an error text never reaches it."""
    from agent.logs import register_secret

    registered = "planted-status-key-0123"
    register_secret(registered)
    notifier = Notifier(path_receiver.address)
    notifier.status(f"reconnecting: invalid header x-goog-api-key: {registered}")
    notifier.status("failed: GET wss://h/ws?key=AIzaSyPlantedKeyPlantedKey0123456789ab&x=1")
    notifier.status("closed: " + "x" * 100_000)
    messages = path_receiver.wait_for(3)
    notifier.close()
    assert len(messages) == 3
    text = "\n".join(messages)
    assert registered not in text and "AIzaSyPlanted" not in text
    assert "?key=[REDACTED]&x=1" in messages[1]
    assert len(messages[2]) == len("STATUS=") + systemd.MAX_VALUE_CHARS
    assert messages[2].endswith("...")


def test_outside_systemd_every_call_is_a_quiet_no_op() -> None:
    notifier = Notifier(environ={})
    with capture_logs() as logs:
        assert not notifier.enabled
        assert not notifier.ready() and not notifier.watchdog_ping()
    assert logs == [] and notifier.failures == 0


def test_failures_are_counted_and_logged_once(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    with capture_logs() as logs:
        assert not notifier.ready()
        assert not notifier.watchdog_ping()
        assert not notifier.watchdog_ping()
    assert notifier.failures == 3 and notifier.sent == 0
    assert [e["event"] for e in logs] == ["systemd.notify_failed"]
    assert logs[0]["socket"] == str(tmp_path / "nobody-listens.sock")
    assert "No such file" in logs[0]["error"]


def test_a_full_socket_never_blocks_the_sender(tmp_path: Path) -> None:
    """Nobody reads the socket: sends fail with EAGAIN instead of waiting."""
    path = str(tmp_path / "full.sock")
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(path)
    notifier = Notifier(path)
    results: list[bool] = []

    def flood() -> None:
        for _ in range(5000):
            results.append(notifier.status("x" * 1000))

    with capture_logs() as logs:
        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        sender.join(timeout=20)
    assert not sender.is_alive(), "a send blocked"
    assert len(results) == 5000 and results[0] and not all(results)
    assert notifier.failures == results.count(False)
    assert [e["event"] for e in logs] == ["systemd.notify_failed"]
    notifier.close()
    sink.close()


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "20000000"}, 20.0),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


async def test_the_watchdog_task_pings_at_half_the_interval(path_receiver: Receiver) -> None:
    notifier = Notifier(path_receiver.address)
    with capture_logs() as logs:
        task = asyncio.create_task(watchdog_task(notifier, 0.2))
        await asyncio.sleep(0.45)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    messages = path_receiver.wait_for(3)
    assert set(messages) == {"WATCHDOG=1"} and len(messages) >= 3
    assert {"event": "systemd.watchdog_on", "log_level": "info", "timeout_s": 0.2,
            "period_s": 0.1} in logs
    notifier.close()


async def test_a_stalled_loop_stops_the_pings(path_receiver: Receiver) -> None:
    notifier = Notifier(path_receiver.address)
    task = asyncio.create_task(watchdog_task(notifier, 0.1))  # a ping every 50 ms
    await asyncio.sleep(0.3)
    stall_start = time.monotonic()
    time.sleep(0.6)  # noqa: ASYNC251 (the point: a blocking call stalls the loop)
    stall_end = time.monotonic()
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    times = [t for t, m in path_receiver.messages if m == "WATCHDOG=1"]
    before = [t for t in times if t < stall_start]
    after = [t for t in times if t > stall_end]
    assert len(before) >= 2 and len(after) >= 2, times
    # Nothing arrived while the loop was stalled (beyond the one ping in flight at its
    # start), so systemd's WatchdogSec would run out and restart the service.
    during = [t for t in times if stall_start + 0.05 < t < stall_end]
    assert during == []
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 0.5
    notifier.close()


async def test_an_unhealthy_agent_withholds_pings(path_receiver: Receiver) -> None:
    notifier = Notifier(path_receiver.address)
    healthy = False
    with capture_logs() as logs:
        task = asyncio.create_task(watchdog_task(notifier, 0.1, healthy=lambda: healthy))
        await asyncio.sleep(0.3)
        assert path_receiver.messages == []
        healthy = True
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert path_receiver.wait_for(1) and {m for _, m in path_receiver.messages} == {"WATCHDOG=1"}
    events = [e["event"] for e in logs]
    assert events.count("systemd.watchdog_withheld") == 1
    assert "systemd.watchdog_resumed" in events
    notifier.close()


async def test_without_a_watchdog_the_task_ends_at_once(
        path_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier(path_receiver.address)
    await asyncio.wait_for(watchdog_task(notifier, None), timeout=5)
    await asyncio.wait_for(watchdog_task(Notifier(environ={}), 1.0), timeout=5)
    assert path_receiver.messages == []
    notifier.close()
