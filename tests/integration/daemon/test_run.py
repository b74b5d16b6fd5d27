"""``edge-agent run`` as a real subprocess, under a fake systemd (a NOTIFY_SOCKET the test
binds), against the emulator: a spoken command moves a mock pin and the reply reaches the WAV
sink; SIGTERM leaves the pins safe; SIGHUP restarts only what changed; a stalled loop stops the
watchdog pings; a bad config is refused with every problem."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support.daemon_process import T, start_agent, stop_agent
from tests.support.emulator_client import LAMP_SCENARIO, write_spoken_commands


def config_text(endpoint: str, tmp: Path, extra_camera: str = "") -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "wav:{tmp / "commands.wav"}"
echo = "none"

[audio.output]
device = "wav:{tmp / "reply.wav"}"

[camera]
source = "test-pattern"
interval_s = 0.5
{extra_camera}

[gpio]
pin_factory = "mock"

[[tools]]
name = "set_lamp"
description = "Switch the lamp."
kind = "digital_output"
pin = 17

[logging]
level = "info"
format = "json"
"""


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(time_scale=0.3, scenario=Scenario.from_mapping(LAMP_SCENARIO))
    async with Emulator(config) as running:
        yield running


def turns_completed(emulator: Emulator) -> int:
    sent = [m.message for c in emulator.recordings.connections for m in c.sent]
    return sum(1 for m in sent if m.get("serverContent", {}).get("turnComplete"))


async def test_a_spoken_command_moves_the_pin_and_sigterm_leaves_it_safe(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    started = time.monotonic()
    agent = await start_agent(config, tmp_path)
    try:
        await agent.wait_for(lambda: any("READY=1" in n for _, n in agent.notes), "READY=1")
        ready_after = next(t for t, n in agent.notes if "READY=1" in n) - started
        await agent.wait_for(
            lambda: any(e.get("outcome") == "ok" for e in agent.events("tool.actuated")),
            "the set_lamp call",
        )
        await agent.wait_for(lambda: len(emulator.recordings.session().video) >= 2, "camera frames")
        await agent.wait_for(lambda: turns_completed(emulator) >= 2, "both replies")
        await asyncio.sleep(1.5)  # the reply plays out in real time
    finally:
        code = await stop_agent(agent)
    assert code == 0
    [actuated] = [e for e in agent.events("tool.actuated") if e.get("tool") == "set_lamp"]
    assert actuated["args"] == {"action": "on"} and actuated["outcome"] == "ok"
    [pins] = agent.events("daemon.pins_safe")
    assert pins["pins"]["set_lamp"]["state"] == {"on": False}, "SIGTERM drove the lamp off"
    responses = [r for r in emulator.recordings.session().received if r.kind == "toolResponse"]
    assert len(responses) == 1
    statuses = [n for _, n in agent.notes if "STATUS=" in n]
    assert any("live" in s for s in statuses), statuses
    assert any("STOPPING=1" in n for _, n in agent.notes)
    closes = [c.close_code for c in emulator.recordings.connections]
    assert closes == [1000], "the session was closed with 1000"
    with wave.open(str(tmp_path / "reply.wav")) as wav:
        heard = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert len(heard) > 0.5 * 24000 and np.abs(heard).max() > 1000, "the reply reached the sink"
    assert ready_after < 10.0


async def test_sighup_restarts_only_what_changed(emulator: Emulator, tmp_path: Path) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    agent = await start_agent(config, tmp_path)
    try:
        await agent.wait_for(lambda: emulator.recordings.sessions, "a session")
        config.write_text(config_text(emulator.url, tmp_path, extra_camera="quality = 60"))
        agent.process.send_signal(signal.SIGHUP)
        await agent.wait_for(lambda: agent.events("daemon.reload"), "the reload")
        config.write_text(config_text(emulator.url, tmp_path) + "\n[bogus]\nx = 1\n")
        agent.process.send_signal(signal.SIGHUP)
        await agent.wait_for(lambda: agent.events("daemon.reload_refused"), "a refused reload")
        await asyncio.sleep(0.5)
    finally:
        code = await stop_agent(agent)
    assert code == 0
    [reload] = agent.events("daemon.reload")
    assert reload["changed"] == ["camera"]
    assert len(emulator.recordings.connections) == 1, "the session was not reconnected"
    assert any("bogus" in e.get("problem", "") for e in agent.events("config.invalid"))
    assert any("RELOADING=1" in n for _, n in agent.notes)


def declared_tools(connection) -> list[str]:  # type: ignore[no-untyped-def]
    [setup] = [r.message["setup"] for r in connection.received if r.kind == "setup"]
    return [d["name"] for t in setup.get("tools", []) for d in t.get("functionDeclarations", [])]


CHIME = (
    '\n[[tools]]\nname = "chime"\ndescription = "Sound a chime."\nkind = "buzzer"\n'
    "pin = 23\n"
)
BROKEN_TOOL = (
    '\n[[tools]]\nname = "weather"\ndescription = "Weather."\nkind = "custom"\n'
    'handler = "no_such_weather_module:read"\n'
)


async def test_sighup_with_new_tools_declares_them_on_a_resumed_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    agent = await start_agent(config, tmp_path)
    try:
        await agent.wait_for(lambda: agent.events("session.state"), "a session")
        await agent.wait_for(lambda: emulator.recordings.sessions, "a session at the emulator")
        config.write_text(config_text(emulator.url, tmp_path) + CHIME)
        agent.process.send_signal(signal.SIGHUP)
        await agent.wait_for(lambda: len(emulator.recordings.connections) >= 2, "a new connection")
    finally:
        code = await stop_agent(agent)
    assert code == 0
    [reload] = agent.events("daemon.reload")
    assert reload["changed"] == ["tools"]
    first, second = emulator.recordings.connections[:2]
    assert declared_tools(first) == ["set_lamp"]
    assert declared_tools(second) == ["set_lamp", "chime"]


async def test_a_reload_that_cannot_build_keeps_the_agent_running_as_it_was(
    emulator: Emulator, tmp_path: Path
) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    agent = await start_agent(config, tmp_path)
    try:
        await agent.wait_for(lambda: emulator.recordings.sessions, "a session")
        config.write_text(config_text(emulator.url, tmp_path) + BROKEN_TOOL)
        agent.process.send_signal(signal.SIGHUP)
        await agent.wait_for(lambda: agent.events("daemon.reload_refused"), "a refused reload")
        await agent.wait_for(lambda: len(emulator.recordings.connections) >= 2,
                             "the old config's session back")
        await agent.wait_for(lambda: turns_completed(emulator) >= 1, "a turn answered after it")
    finally:
        code = await stop_agent(agent)
    assert code == 0, "a failed reload is not a failed agent"
    [refused] = agent.events("daemon.reload_refused")
    assert "no_such_weather_module" in refused["reason"]
    [failed] = agent.events("daemon.rebuild_failed")
    assert failed["restoring"] == ["gpio", "session"]
    assert declared_tools(emulator.recordings.connections[1]) == ["set_lamp"]
    assert emulator.recordings.connections[1].resumed, "the conversation went on where it was"


async def test_a_stalled_loop_stops_the_watchdog_pings(emulator: Emulator, tmp_path: Path) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    agent = await start_agent(config, tmp_path, WATCHDOG_USEC="400000", EDGE_AGENT_TEST_HOOKS="1")
    try:
        await agent.wait_for(
            lambda: sum("WATCHDOG=1" in n for _, n in agent.notes) >= 3, "watchdog pings"
        )
        agent.process.send_signal(signal.SIGUSR2)  # blocks the event loop
        await agent.wait_for(lambda: agent.events("daemon.test_stall"), "the stall")
        stalled_at = time.monotonic()
        await asyncio.sleep(1.5)
        late = [t for t, n in agent.notes if "WATCHDOG=1" in n and t > stalled_at + 0.1]
    finally:
        agent.process.kill()
        await stop_agent(agent)
    assert late == [], "no ping may come while the loop is stalled: systemd would restart it"


def test_a_bad_config_is_refused_with_every_problem(tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "agent.toml"
    config.write_text(
        '[audio]\nchunk_ms = 500\n\n[camera]\nwidht = 640\n\n[[tools]]\nname = "a"\n'
        'description = "x"\nkind = "digital_output"\npin = 17\n\n[[tools]]\nname = "b"\n'
        'description = "y"\nkind = "pwm"\npin = 17\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=T, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    err = result.stderr
    assert f"{config}:2: audio.chunk_ms" in err
    assert f"{config}:5: camera.widht" in err and "did you mean" in err
    assert "tools[1].pin" in err and "17" in err
    assert "nothing was started" in err


async def test_a_refused_key_stops_the_agent_without_retrying(tmp_path: Path) -> None:
    config_path = tmp_path / "agent.toml"
    async with Emulator(EmulatorConfig(api_key="the-right-key")) as emulator:
        text = config_text(emulator.url, tmp_path).replace(
            'backend = "emulator"', 'backend = "gemini"'
        )
        config_path.write_text(text)
        write_spoken_commands(tmp_path / "commands.wav")
        agent = await start_agent(config_path, tmp_path, GEMINI_API_KEY="a-wrong-key")
        try:
            async with asyncio.timeout(T):
                code = await agent.process.wait()
        finally:
            await stop_agent(agent)
        attempts = emulator.connections
    assert code == 78, "EX_CONFIG: systemd's restart limit, not a retry storm, takes it from here"
    assert attempts == 1
    [failed] = agent.events("session.failed")
    assert "API key" in failed["reason"]
    assert "a-wrong-key" not in json.dumps(agent.logs), "the key never reaches the logs"


async def test_a_part_that_cannot_start_fails_the_start_before_anything_goes_out(
    emulator: Emulator, tmp_path: Path
) -> None:
    config_path = tmp_path / "agent.toml"
    broken_tool = (
        '\n[[tools]]\nname = "weather"\ndescription = "Weather."\nkind = "custom"\n'
        'handler = "no_such_weather_module:read"\n'
    )
    config_path.write_text(config_text(emulator.url, tmp_path) + broken_tool)
    write_spoken_commands(tmp_path / "commands.wav")
    agent = await start_agent(config_path, tmp_path)
    try:
        async with asyncio.timeout(T):
            code = await agent.process.wait()
    finally:
        await stop_agent(agent)
    assert code == 1, "systemd restarts it (Restart=on-failure)"
    [failed] = agent.events("daemon.start_failed")
    assert "no_such_weather_module" in failed["error"]
    assert not emulator.recordings.connections, "nothing half-started reached the network"
    assert not any("READY=1" in n for _, n in agent.notes)
