"""`edge-agent run` stopped and started again with the same StateDirectory, against one
emulator: the second run resumes the first run's session with the saved handle, and the
emulator's fake model answers from what the first run's user said; with the handle expired the
second run starts a fresh session seeded with the transcript, and the emulator's model answers
from the seed. The emulator's reply quotes the user's previous turn from its session memory
(``{previous}``), so the reply itself shows what the service remembers."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support.daemon_process import Agent, start_agent, stop_agent
from tests.support.emulator_client import write_spoken_commands

SCENARIO = {
    "name": "memory",
    "default_reply": "Heard: {text}. Before that: {previous}.",
    "turn": [{"spoken": 1, "said": "my name is Ada"}],
}


def config_text(endpoint: str, tmp: Path) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "wav:{tmp / "command.wav"}"
echo = "none"

[audio.output]
device = "null"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[logging]
level = "info"
format = "json"
"""


def replies(emulator: Emulator) -> list[str]:
    return [text for s in emulator.sessions.sessions.values()
            for role, text in s.state.history if role == "model"]


async def one_run(emulator: Emulator, tmp_path: Path, state: Path, replies_before: int) -> Agent:
    """Start the agent, let it say its one command, wait for the reply, stop it."""
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    run = tmp_path / f"run-{replies_before}"  # the notify socket of each run
    run.mkdir()
    agent = await start_agent(config, run, STATE_DIRECTORY=str(state))
    try:
        await agent.wait_for(lambda: len(replies(emulator)) > replies_before, "the reply")
        await asyncio.sleep(1.0)  # the reply's last transcript and the handle after it
    finally:
        code = await stop_agent(agent)
    assert code == 0
    return agent


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    write_spoken_commands(tmp_path / "command.wav", count=1, gap_s=2.0)
    return folder


def saved(state: Path) -> dict:  # type: ignore[type-arg]
    path = state / "conversation.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_bytes())  # type: ignore[no-any-return]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(time_scale=0.3, scenario=Scenario.from_mapping(SCENARIO))
    async with Emulator(config) as running:
        yield running


async def test_a_restarted_agent_resumes_the_conversation_it_had(
    emulator: Emulator, tmp_path: Path, state: Path
) -> None:
    await one_run(emulator, tmp_path, state, 0)
    first = saved(state)
    assert first["handle"], "the newest handle was kept"
    assert [t["role"] for t in first["turns"]] == ["user", "model"]
    assert first["turns"][0]["text"] == "my name is Ada"

    second = await one_run(emulator, tmp_path, state, 1)
    assert emulator.stats.resumed == 1 and emulator.stats.sessions == 1, "one session, resumed"
    [session] = emulator.sessions.sessions.values()
    assert session.state.context_turns == 0, "a resumed session needs no seed"
    assert replies(emulator)[-1] == "Heard: spoken turn 2. Before that: my name is Ada."
    assert second.events("memory.resuming") and second.events("session.resumed")
    assert not second.events("session.seeded")
    print("\na resumed conversation after a daemon restart remembers the last turn: yes "
          "(the emulator resumed the session with the saved handle)")


async def test_with_the_handle_expired_the_fresh_session_is_seeded(tmp_path: Path,
                                                                   state: Path) -> None:
    config = EmulatorConfig(time_scale=0.3, handle_ttl_s=1.0,  # 0.3 s of the test's time
                            scenario=Scenario.from_mapping(SCENARIO))
    async with Emulator(config) as emulator:
        await one_run(emulator, tmp_path, state, 0)
        second = await one_run(emulator, tmp_path, state, 1)  # startup takes longer than 0.3 s
        assert emulator.stats.resumed == 0 and emulator.stats.sessions == 2
        fresh = max(emulator.sessions.sessions.values(), key=lambda s: s.last_closed_at or 0)
        assert fresh.state.context_turns == 2, "the emulator saw the seed"
        assert fresh.state.history[:2] == [
            ("user", "my name is Ada"), ("model", "Heard: my name is Ada. Before that: .")]
        assert fresh.state.history[-1] == (
            "model", "Heard: my name is Ada. Before that: my name is Ada.")
    assert second.events("session.context_lost") and second.events("session.seeded")
    assert [t["text"] for t in saved(state)["turns"]][-1] == (
        "Heard: my name is Ada. Before that: my name is Ada.")
