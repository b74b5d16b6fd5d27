"""A fresh connection starts from the transcript it is given (``clientContent`` with
``turnComplete: false``): the emulator's fake model sees it as context and answers from it; a
resumed connection is not seeded again, and every new handle is reported."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ResilientSession, SessionState
from agent.live.types import Content, Part

T = 10.0
SEED = [Content(role="user", parts=[Part(text="my name is Ada")]),
        Content(role="model", parts=[Part(text="Hello Ada.")])]


@pytest.fixture
async def emulator() -> Emulator:  # type: ignore[misc]
    scenario = Scenario.from_mapping({"name": "memory",
                                      "default_reply": "Before that you said: {previous}"})
    async with Emulator(EmulatorConfig(time_scale=0.01, scenario=scenario)) as running:
        yield running


def model_for(emulator: Emulator) -> LiveGenerativeModel:
    return LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k", endpoint=emulator.url),
                               model="gemini-live-2.5-flash-preview")


async def wait_for(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.01)


def history(emulator: Emulator) -> list[tuple[str, str]]:
    [session] = [s for s in emulator.sessions.sessions.values() if s.open_connection is not None]
    return session.state.history


async def drain(session: ResilientSession) -> None:
    async for _ in session.receive():
        pass


async def test_a_fresh_session_answers_from_the_seeded_turns(emulator: Emulator) -> None:
    handles: list[str | None] = []
    async with ResilientSession(model_for(emulator)) as session:
        session.seed = lambda: SEED
        session.on_handle = handles.append
        reader = asyncio.create_task(drain(session))
        await session.wait_live()
        await session.send("what is my name?")
        await wait_for(lambda: len(history(emulator)) >= 4)
        assert history(emulator) == [
            ("user", "my name is Ada"), ("model", "Hello Ada."), ("user", "what is my name?"),
            ("model", "Before that you said: my name is Ada")]
        await wait_for(lambda: handles)
        reader.cancel()
    assert handles[-1] == session.handle
    sent = [m.message for m in emulator.recordings.connections[0].received]
    first = sent[1]
    assert first == {"clientContent": {"turns": [t.to_wire() for t in SEED],
                                       "turnComplete": False}}, "the seed comes before all else"


async def test_a_resumed_connection_is_not_seeded_again(emulator: Emulator) -> None:
    calls = 0

    def seed() -> list[Content]:
        nonlocal calls
        calls += 1
        return SEED

    handles: list[str | None] = []
    async with ResilientSession(model_for(emulator)) as session:
        session.seed = seed
        session.on_handle = handles.append
        reader = asyncio.create_task(drain(session))
        await session.wait_live()
        await session.send("hi")
        await wait_for(lambda: len(handles) >= 2)  # one at setup, one after the reply
        emulator.inject(Fault.drop())
        await wait_for(lambda: session.stats.resumptions == 1
                       and session.state is SessionState.LIVE)
        reader.cancel()
    assert calls == 1
    [server_session] = emulator.sessions.sessions.values()
    assert server_session.state.context_turns == 2, "the resumed session kept its context"
    assert server_session.state.history[:2] == [("user", "my name is Ada"), ("model", "Hello Ada.")]


async def test_a_refused_handle_starts_a_fresh_session_from_the_seed(emulator: Emulator) -> None:
    handles: list[str | None] = []
    with structlog.testing.capture_logs() as logs:
        async with ResilientSession(model_for(emulator)) as session:
            session.seed = lambda: SEED
            session.on_handle = handles.append
            session.handle = "a-handle-the-service-forgot"
            reader = asyncio.create_task(drain(session))
            await session.wait_live()
            await session.send("and now?")
            await wait_for(lambda: len(history(emulator)) >= 4)
            reader.cancel()
    assert handles[0] is None, "the refused handle was dropped"
    assert history(emulator)[:2] == [("user", "my name is Ada"), ("model", "Hello Ada.")]
    assert [e["turns"] for e in logs if e["event"] == "session.seeded"] == [2]
    assert any(e["event"] == "session.context_lost" for e in logs)
