"""The agent's own buttons, on mock pins, through the whole daemon and the emulator:
push-to-talk marks the user's turn with activityStart/activityEnd, and mute stops the
microphone (privacy)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.systemd import Notifier

T = 10.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig()) as running:
        yield running


def config(endpoint: str, audio: str, status: str) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "tone:300"
echo = "none"
{audio}

[audio.output]
device = "null"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[gpio.status]
{status}

[health]
watchdog = false
"""


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.02)


def kinds(emulator: Emulator) -> list[str]:
    return [r.kind for c in emulator.recordings.connections for r in c.received]


async def run_daemon(text: str, tmp: Path) -> tuple[Daemon, asyncio.Task[int]]:
    daemon = Daemon(parse_config(text, base_dir=tmp), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    await until(lambda: daemon.controller is not None)
    return daemon, task


def pin(daemon: Daemon, number: int):  # type: ignore[no-untyped-def]
    assert daemon.parts is not None
    return daemon.parts.registry.pin_factory.pin(number)


async def test_push_to_talk_marks_the_turn(emulator: Emulator, tmp_path: Path) -> None:
    text = config(emulator.url, "push_to_talk = true", "push_to_talk_button = 21")
    daemon, task = await run_daemon(text, tmp_path)
    try:
        await until(lambda: emulator.recordings.sessions)
        await asyncio.sleep(0.5)
        assert "realtimeInput.audio" not in kinds(emulator), "nothing is sent before the press"
        pin(daemon, 21).drive_low()  # pressed (pull-up)
        await until(lambda: kinds(emulator).count("realtimeInput.audio") >= 10)
        pin(daemon, 21).drive_high()
        await until(lambda: "realtimeInput.activityEnd" in kinds(emulator))
        sent_at_release = kinds(emulator).count("realtimeInput.audio")
        await asyncio.sleep(0.5)
        assert kinds(emulator).count("realtimeInput.audio") == sent_at_release
    finally:
        daemon.stop()
        await task
    seen = [k for k in kinds(emulator) if k != "realtimeInput.audio"]
    assert seen[:3] == ["setup", "realtimeInput.activityStart", "realtimeInput.activityEnd"]
    setup = emulator.recordings.connections[0].received[0].message["setup"]
    assert setup["realtimeInputConfig"]["automaticActivityDetection"]["disabled"] is True


async def test_the_mute_button_stops_the_microphone(emulator: Emulator, tmp_path: Path) -> None:
    text = config(emulator.url, "", "mute_button = 20")
    daemon, task = await run_daemon(text, tmp_path)
    try:
        await until(lambda: kinds(emulator).count("realtimeInput.audio") >= 5)
        pin(daemon, 20).drive_low()  # press: mute
        pin(daemon, 20).drive_high()
        assert daemon.controller is not None
        controller = daemon.controller
        await until(lambda: controller.muted)
        await until(lambda: "realtimeInput.audioStreamEnd" in kinds(emulator))
        await asyncio.sleep(0.2)
        muted_at = kinds(emulator).count("realtimeInput.audio")
        await asyncio.sleep(0.6)
        assert kinds(emulator).count("realtimeInput.audio") == muted_at
        pin(daemon, 20).drive_low()  # press again: unmute
        pin(daemon, 20).drive_high()
        await until(lambda: kinds(emulator).count("realtimeInput.audio") > muted_at + 5)
    finally:
        daemon.stop()
        await task


async def test_the_confirm_button_acts_and_the_model_hears_of_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    tool = """
[[tools]]
name = "garage_door"
description = "Open or close the garage door."
kind = "digital_output"
pin = 17
confirm = true
"""
    text = config(emulator.url, "", "confirm_button = 16") + tool
    daemon, task = await run_daemon(text, tmp_path)
    try:
        assert daemon.parts is not None
        registry = daemon.parts.registry
        asked = await registry.call("garage_door", {"action": "on"})
        assert "press the confirm button" in asked["result"]
        assert pin(daemon, 17).state == 0
        await asyncio.sleep(1.1)  # the user heard the question
        pin(daemon, 16).drive_low()
        pin(daemon, 16).drive_high()
        await until(lambda: pin(daemon, 17).state == 1)
        await until(lambda: any("pressed the confirm button: garage_door was carried out"
                                in t for t in emulator.recordings.session().texts()))
        # as realtime text: a mid-session clientContent turn is refused by some models
        notes = [r for r in emulator.recordings.session().received
                 if "pressed the confirm button" in json.dumps(r.message)]
        assert [r.kind for r in notes] == ["realtimeInput.text"]
    finally:
        daemon.stop()
        await task
