"""MCP tools through the whole daemon: a stdio server written with the SDK's server side is
started by the agent, its tools are declared in the setup next to a GPIO tool, and a toolCall
from the emulator reaches it and is answered; a call with bad arguments never reaches it; a call
the service cancels ends without an answer; a server that crashes is restarted and answers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.systemd import Notifier

SERVER = Path(__file__).parents[2] / "support" / "mcp_home_server.py"
T = 30.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    scenario = Scenario.from_mapping({"name": "mcp", "turn": [
        {"text": "desk", "call": [{"name": "home_light_on",
                                   "args": {"entity_id": "light.desk", "brightness": 7}}],
         "reply": "The desk light is on."},
        {"text": "bad", "call": [{"name": "home_light_on", "args": {"brightness": "x"}}],
         "reply": "Hm."},
        {"text": "slow", "call": [{"name": "home_slow_report", "args": {"seconds": 5}}],
         "reply": "Still reading."},
        {"text": "crash", "call": [{"name": "home_crash", "args": {}}], "reply": "Oops."},
    ]})  # fmt: skip
    async with Emulator(EmulatorConfig(scenario=scenario, record=True)) as running:
        yield running


def config(endpoint: str) -> str:
    command = json.dumps([sys.executable, str(SERVER)])
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "silence"
echo = "none"

[audio.output]
device = "null"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[[tools]]
name = "lamp"
description = "The lamp."
kind = "digital_output"
pin = 17

[[tools]]
name = "home"
kind = "mcp"
command = {command}
allow = ["light_on", "slow_report", "crash"]

[health]
watchdog = false
"""


def responses(emulator: Emulator) -> list[dict[str, Any]]:
    return [
        response
        for c in emulator.recordings.connections for r in c.received if r.kind == "toolResponse"
        for response in r.message["toolResponse"]["functionResponses"]
    ]  # fmt: skip


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_an_mcp_tool_is_declared_called_and_answered(
    emulator: Emulator, tmp_path: Path
) -> None:
    daemon = Daemon(parse_config(config(emulator.url), base_dir=tmp_path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: daemon.controller is not None and bool(emulator.recordings.connections))
        setup = emulator.recordings.connections[0].received[0].message["setup"]
        declared = {d["name"]: d for d in setup["tools"][0]["functionDeclarations"]}
        assert set(declared) == {"lamp", "home_light_on", "home_slow_report",
                                 "home_crash"}  # allow-listed: not home_broken
        assert declared["home_light_on"]["behavior"] == "BLOCKING"
        assert daemon.parts is not None
        await daemon.parts.session.send("the desk light please")
        await until(lambda: len(responses(emulator)) >= 1)
        [answer] = responses(emulator)
        assert answer["name"] == "home_light_on"
        assert answer["response"] == {"result": {"result": "light.desk on at 7"}}
        await daemon.parts.session.send("bad light")
        await until(lambda: len(responses(emulator)) >= 2)
        refused = responses(emulator)[1]["response"]
        assert "invalid arguments for home_light_on" in refused["error"]
        outcomes = daemon.parts.registry.tool_outcomes()
        assert outcomes[("home_light_on", "ok")] == 1
        assert outcomes[("home_light_on", "invalid")] == 1
    finally:
        daemon.stop()
        assert await task == 0


@asynccontextmanager
async def running(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Daemon]:
    daemon = Daemon(parse_config(config(emulator.url), base_dir=tmp_path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: daemon.controller is not None and bool(emulator.recordings.connections))
        yield daemon
    finally:
        daemon.stop()
        assert await task == 0


async def test_a_call_the_service_cancels_ends_without_an_answer(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with running(emulator, tmp_path) as daemon:
        assert daemon.parts is not None and daemon.controller is not None
        emulator.inject(Fault.cancel_tool_call(after_s=0.3))
        await daemon.parts.session.send("a slow report")
        stats = daemon.controller.stats
        await until(lambda: stats.tool_cancellations == 1)
        outcomes = daemon.parts.registry.tool_outcomes
        await until(lambda: outcomes().get(("home_slow_report", "cancelled")) == 1)
        await daemon.parts.session.send("the desk light please")
        await until(lambda: len(responses(emulator)) >= 1)
        [answer] = responses(emulator)  # none for the cancelled call
        assert answer["name"] == "home_light_on" and "result" in answer["response"]


async def test_a_server_that_crashes_is_restarted_and_answers_again(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with running(emulator, tmp_path) as daemon:
        assert daemon.parts is not None
        [server] = daemon.parts.registry.mcp_servers
        await daemon.parts.session.send("crash the server")
        await until(lambda: len(responses(emulator)) >= 1)
        assert "error" in responses(emulator)[0]["response"]
        await until(lambda: server.restarts >= 1 and server.up)
        await daemon.parts.session.send("the desk light please")
        await until(lambda: len(responses(emulator)) >= 2)
        again = responses(emulator)[1]
        assert again["response"] == {"result": {"result": "light.desk on at 7"}}
