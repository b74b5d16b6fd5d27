"""A fresh connection starts from the transcript it is given, declared as initial history
(``historyConfig``) and sent in one ``clientContent`` with ``turnComplete: true`` before any
realtime input: the emulator, as strict as gemini-3.1-flash-live about clientContent, sees it
as context and answers from it. A resumed connection is not seeded again and declares no
history; every new handle is reported. ``seed_mode = "context"`` sends the turns as plain
context, which such a model refuses."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.emulator.wire import CLIENT_CONTENT_REFUSED
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState
from agent.live.types import Content, GenerativeContentBlob, Part

T = 10.0
SEED = [Content(role="user", parts=[Part(text="my name is Ada")]),
        Content(role="model", parts=[Part(text="Hello Ada.")])]


HISTORY = {"initialHistoryInClientContent": True}


def emulator_config(client_content: str = "initial_history_only") -> EmulatorConfig:
    scenario = Scenario.from_mapping({"name": "memory",
                                      "default_reply": "Before that you said: {previous}"})
    return EmulatorConfig(time_scale=0.01, scenario=scenario,
                          client_content=client_content)  # type: ignore[arg-type]


@pytest.fixture
async def emulator() -> Emulator:  # type: ignore[misc]
    async with Emulator(emulator_config()) as running:
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
        # typed as realtime text: such a model takes clientContent only as initial history
        await session.send_text_realtime("what is my name?")
        await wait_for(lambda: len(history(emulator)) >= 4)
        assert history(emulator) == [
            ("user", "my name is Ada"), ("model", "Hello Ada."), ("user", "what is my name?"),
            ("model", "Before that you said: my name is Ada")]
        await wait_for(lambda: handles)
        reader.cancel()
    assert handles[-1] == session.handle
    sent = [m.message for m in emulator.recordings.connections[0].received]
    assert sent[0]["setup"]["historyConfig"] == HISTORY
    first = sent[1]
    assert first == {"clientContent": {"turns": [t.to_wire() for t in SEED],
                                       "turnComplete": True}}, "the seed comes before all else"
    assert emulator.recordings.connection(1).close_code in (None, 1000), "nothing was refused"


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
        await session.send_text_realtime("hi")
        await wait_for(lambda: len(handles) >= 2)  # one at setup, one after the reply
        emulator.inject(Fault.drop())
        await wait_for(lambda: session.stats.resumptions == 1
                       and session.state is SessionState.LIVE)
        reader.cancel()
    assert calls == 1
    resumed = emulator.recordings.connection(2)
    assert resumed.resumed and "historyConfig" not in resumed.received[0].message["setup"]
    assert "clientContent" not in resumed.kinds()
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
            await session.send_text_realtime("and now?")
            await wait_for(lambda: len(history(emulator)) >= 4)
            reader.cancel()
    assert handles[0] is None, "the refused handle was dropped"
    assert history(emulator)[:2] == [("user", "my name is Ada"), ("model", "Hello Ada.")]
    assert [e["turns"] for e in logs if e["event"] == "session.seeded"] == [2]
    assert any(e["event"] == "session.context_lost" for e in logs)


async def test_audio_held_before_connecting_follows_the_seed(emulator: Emulator) -> None:
    chunk = GenerativeContentBlob("audio/pcm;rate=16000", bytes(640))
    async with ResilientSession(model_for(emulator)) as session:
        session.seed = lambda: SEED
        await session.send_audio_realtime(chunk)  # not live yet: held for replay
        await session.send_audio_realtime(chunk)
        reader = asyncio.create_task(drain(session))
        await session.wait_live()
        await session.send_audio_realtime(chunk)
        recording = emulator.recordings.connection(1)
        await wait_for(lambda: len(recording.kinds()) >= 5)
        assert session.state is SessionState.LIVE
        reader.cancel()
    assert recording.kinds() == ["setup", "clientContent", "realtimeInput.audio",
                                 "realtimeInput.audio", "realtimeInput.audio"]
    assert recording.close_code in (None, 1000), "the audio came after the history ended"


async def test_an_empty_seed_declares_no_history(emulator: Emulator) -> None:
    async with ResilientSession(model_for(emulator)) as session:
        session.seed = list
        reader = asyncio.create_task(drain(session))
        await session.wait_live()
        await session.send_text_realtime("hello")
        await wait_for(lambda: len(history(emulator)) >= 2)
        reader.cancel()
    recording = emulator.recordings.connection(1)
    assert "historyConfig" not in recording.received[0].message["setup"]
    assert recording.kinds() == ["setup", "realtimeInput.text"]


async def test_seeding_as_context_works_where_client_content_is_free() -> None:
    async with Emulator(emulator_config("any")) as emulator, \
            ResilientSession(model_for(emulator)) as session:
        session.seed = lambda: SEED
        session.seed_mode = "context"
        reader = asyncio.create_task(drain(session))
        await session.wait_live()
        await session.send("what is my name?")
        await wait_for(lambda: len(history(emulator)) >= 4)
        assert history(emulator)[3] == ("model", "Before that you said: my name is Ada")
        reader.cancel()
        sent = [m.message for m in emulator.recordings.connection(1).received]
    assert "historyConfig" not in sent[0]["setup"]
    assert sent[1] == {"clientContent": {"turns": [t.to_wire() for t in SEED],
                                         "turnComplete": False}}


async def test_seeding_as_context_is_refused_by_a_model_that_wants_initial_history(
        emulator: Emulator) -> None:
    policy = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)
    with structlog.testing.capture_logs() as logs:
        async with ResilientSession(model_for(emulator), policy) as session:
            session.seed = lambda: SEED
            session.seed_mode = "context"
            reader = asyncio.create_task(drain(session))
            await wait_for(lambda: session.stats.failures >= 1)
            reader.cancel()
    refused = emulator.recordings.connection(1)
    assert "historyConfig" not in refused.received[0].message["setup"]
    assert (refused.close_code, refused.close_reason) == CLIENT_CONTENT_REFUSED
    [failure, *_] = [e for e in logs if e["event"] == "session.failure"]
    assert failure["close_code"] == 1007 and "historyConfig" in failure["reason"]
