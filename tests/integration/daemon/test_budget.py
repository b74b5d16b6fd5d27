"""The daily budget through the whole daemon and the emulator, on an injected clock: a day's
turns reach each step at its share and then the stop (STATUS, log line, error LED, muted), the
usage survives a restart, and the next day gives everything back."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import structlog

from agent.config import AgentConfig, parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.systemd import Notifier
from agent.usage import degraded

from .conftest import emulator_config

T = 20.0
ERROR_LED = 22
SHARES = {"camera_off": 0.1, "low_resolution": 0.3, "wake_word_only": 0.5}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(time_scale=0.1)) as running:
        yield running


class Statuses:
    """A notify socket read as it is written (systemd's queue holds only a few datagrams)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = (await loop.sock_recv(self.sock, 4096)).decode()
            self.lines += [line[7:] for line in message.splitlines()
                           if line.startswith("STATUS=")]


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[Statuses]:
    statuses = Statuses(tmp_path / "notify")
    yield statuses
    statuses.task.cancel()
    statuses.sock.close()


def config(endpoint: str, tmp_path: Path) -> AgentConfig:
    steps = "\n".join(f"{step} = {share}" for step, share in SHARES.items())
    return parse_config(emulator_config(endpoint, f"""
[gpio.status]
leds = {{ error = {ERROR_LED} }}

[usage]
file = "usage.json"
save_interval_s = 1

[budget]
daily_tokens = 20000

[budget.steps]
{steps}
""", audio_input="silence", camera='source = "test-pattern"'), base_dir=tmp_path)


class Clock:
    def __init__(self) -> None:
        self.day = date(2026, 12, 6)

    def __call__(self) -> date:
        return self.day


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.02)


def settled(daemon: Daemon) -> bool:
    """The parts run the config the budget's level asks for."""
    parts = daemon.parts
    return (parts is not None and daemon.controller is not None
            and parts.config == degraded(daemon.config, daemon.usage.level.steps))


def error_led(daemon: Daemon) -> bool:
    assert daemon.parts is not None
    return bool(daemon.parts.registry.pin_factory.pin(ERROR_LED).state)


async def test_a_day_reaches_each_step_then_stops_and_the_next_day_resumes(
    emulator: Emulator, tmp_path: Path, notify: Statuses,
) -> None:
    clock = Clock()
    settings = config(emulator.url, tmp_path)
    notifier = Notifier(str(tmp_path / "notify"))
    daemon = Daemon(settings, notifier=notifier, today=clock)
    task = asyncio.create_task(daemon.run())
    seen: list[tuple[str, ...]] = []
    with structlog.testing.capture_logs() as logs:
        try:
            await until(lambda: daemon.parts is not None and daemon.parts.session.state == "live")
            assert daemon.parts is not None and daemon.parts.camera is not None
            turn = 0
            while not daemon.usage.level.stopped:
                reports = daemon.usage.ledger.current().reports
                await daemon.parts.session.send(f"tell me about the weather, turn {turn}")
                await until(lambda: daemon.usage.ledger.current().reports > reports)  # noqa: B023
                turn += 1
                level = daemon.usage.level
                share = daemon.usage.ledger.current().total / 20000
                assert level.share == pytest.approx(share)
                assert level.steps == tuple(s for s, at in SHARES.items() if share >= at)
                if not seen or seen[-1] != level.steps:
                    seen.append(level.steps)
                await until(lambda: settled(daemon))
                parts = daemon.parts
                assert (parts.camera is None) == ("camera_off" in level.steps)
                assert (parts.config.live.media_resolution == "low") == (
                    "low_resolution" in level.steps)
                assert daemon.controller is not None
                assert daemon.controller.listening_for_wake_word == (
                    "wake_word_only" in level.steps)
                assert turn < 40, "the budget was never used up"
            assert seen[-1] == tuple(SHARES)  # every step given up, in the order of shares
            await until(lambda: daemon.controller is not None and daemon.controller.muted)
            await until(lambda: error_led(daemon))
            await until(lambda: any("budget used up" in s for s in notify.lines))
        finally:
            daemon.stop()
            assert await task == 0
    assert [e for e in logs if e["event"] == "budget.stopped"]
    assert [tuple(e["steps"]) for e in logs if e["event"] == "budget.step"] == [
        steps for steps in seen if steps]
    saved = json.loads((tmp_path / "usage.json").read_text())
    day_total = sum(saved["days"]["2026-12-06"]["tokens"].values())
    assert day_total >= 20000

    # A restart the same day: the usage is read back, and the agent starts stopped.
    again = Daemon(settings, notifier=notifier, today=clock)
    task = asyncio.create_task(again.run())
    with structlog.testing.capture_logs() as logs:
        try:
            await until(lambda: again.controller is not None and again.controller.muted)
            assert again.usage.ledger.current().total == day_total
            assert again.usage.level.stopped and again.parts is not None
            assert again.parts.camera is None and again.parts.config.listen.mode == "wake_word"
            await until(lambda: error_led(again))
            clock.day = date(2026, 12, 7)  # midnight
            await until(lambda: not again.usage.level.stopped and settled(again))
            await until(lambda: again.controller is not None and not again.controller.muted)
            assert again.parts.camera is not None
            assert again.parts.config == settings
            await until(lambda: not error_led(again))
        finally:
            again.stop()
            assert await task == 0
    [day] = [e for e in logs if e["event"] == "usage.day"]
    assert day["day"] == "2026-12-06" and day["tokens"] == day_total
    assert [e for e in logs if e["event"] == "budget.resumed"]
