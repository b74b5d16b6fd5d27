"""`edge-agent run` stopped and started again with the same StateDirectory, against one
emulator: the second run resumes the first run's session with the saved handle, and the
emulator's fake model answers from what the first run's user said; with the handle expired the
second run starts a fresh session seeded with the transcript, and the emulator's model answers
from the seed, declared as initial history (the emulator, like gemini-3.1-flash-live, takes
clientContent no other way). The emulator's reply quotes the user's previous turn from its
session memory (``{previous}``), so the reply itself shows what the service remembers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support.restart import SCENARIO, one_run, replies, saved, state_folder


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return state_folder(tmp_path)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(time_scale=0.3, scenario=Scenario.from_mapping(SCENARIO))
    async with Emulator(config) as running:
        yield running


async def test_a_restarted_agent_resumes_the_conversation_it_had(
    emulator: Emulator, tmp_path: Path, state: Path
) -> None:
    await one_run(emulator, tmp_path, state, 1)
    first = saved(state)
    assert first["handle"], "the newest handle was kept"
    assert [t["role"] for t in first["turns"]] == ["user", "model"]
    assert first["turns"][0]["text"] == "my name is Ada"

    second, _ = await one_run(emulator, tmp_path, state, 2)
    assert emulator.stats.resumed == 1 and emulator.stats.sessions == 1, "one session, resumed"
    [session] = emulator.sessions.sessions.values()
    assert session.state.context_turns == 0, "a resumed session needs no seed"
    assert replies(emulator)[-1] == "Heard: spoken turn 2. Before that: my name is Ada."
    assert second.events("memory.resuming") and second.events("session.resumed")
    assert not second.events("session.seeded")


async def test_with_the_handle_expired_the_fresh_session_is_seeded(tmp_path: Path,
                                                                   state: Path) -> None:
    config = EmulatorConfig(time_scale=0.3, handle_ttl_s=1.0,  # 0.3 s of the test's time
                            scenario=Scenario.from_mapping(SCENARIO),
                            client_content="initial_history_only")
    async with Emulator(config) as emulator:
        await one_run(emulator, tmp_path, state, 1)
        second, _ = await one_run(emulator, tmp_path, state, 2)  # a start takes over 0.3 s
        assert emulator.stats.resumed == 0 and emulator.stats.sessions == 2
        fresh = max(emulator.sessions.sessions.values(), key=lambda s: s.last_closed_at or 0)
        assert fresh.state.context_turns == 2, "the emulator saw the seed"
        assert fresh.state.history[:2] == [
            ("user", "my name is Ada"), ("model", "Heard: my name is Ada. Before that: .")]
        assert fresh.state.history[-1] == (
            "model", "Heard: my name is Ada. Before that: my name is Ada.")
        [seeded] = [c for c in emulator.recordings.connections if "clientContent" in c.kinds()]
        setup = seeded.received[0].message["setup"]
        assert setup["historyConfig"] == {"initialHistoryInClientContent": True}
        assert seeded.kinds()[:2] == ["setup", "clientContent"]
    assert second.events("session.context_lost") and second.events("session.seeded")
    assert [t["text"] for t in saved(state)["turns"]][-1] == (
        "Heard: my name is Ada. Before that: my name is Ada.")
