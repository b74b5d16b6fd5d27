"""ResilientSession against the emulator's fault modes: the rest of the agent never sees a drop."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
import structlog

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault, Trigger
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.errors import LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState
from agent.live.types import (
    AUDIO_INPUT_MIME,
    FunctionDeclaration,
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerToolCall,
    Tool,
)

CHUNK = 640  # samples: 40 ms at 16 kHz
T = 10.0


def model_for(emulator: Emulator, key: str = "test-key") -> LiveGenerativeModel:
    return LiveGenerativeModel(
        backend=GeminiDeveloperBackend(api_key=key, endpoint=emulator.url),
        model="gemini-live-2.5-flash-preview",
        tools=[Tool(function_declarations=[FunctionDeclaration(name="set_lamp")])],
    )


def quiet_chunk(n: int) -> np.ndarray:
    """Low-level samples (below the emulator's speech threshold) that number the chunk."""
    start = n * CHUNK
    return ((np.arange(start, start + CHUNK) % 199) - 99).astype("<i2")


async def stream_audio(session: ResilientSession, chunks: int, interval_s: float) -> np.ndarray:
    sent = []
    for n in range(chunks):
        samples = quiet_chunk(n)
        sent.append(samples)
        await session.send_audio_realtime(
            GenerativeContentBlob(AUDIO_INPUT_MIME, samples.tobytes())
        )
        await asyncio.sleep(interval_s)
    return np.concatenate(sent)


async def wait_for(predicate) -> None:  # type: ignore[no-untyped-def]
    """Poll a condition that no event signals (emulator recordings, counters)."""
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.01)


async def drain(session: ResilientSession, sink: list) -> None:  # type: ignore[type-arg]
    async for message in session.receive():
        sink.append(message)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 10-minute connections, goAway 60 s before the end, at 1/200 of real time: 3 s each.
    return EmulatorConfig(port=0, time_scale=0.005, connection_lifetime_s=600.0)


# The emulator's clock runs 200 times fast: "stable" (10 s of a real connection) scales with it.
SCALED_POLICY = ReconnectPolicy(stable_after_s=10.0 * 0.005)


async def test_thirty_minutes_with_three_go_aways_lose_no_audio(emulator: Emulator) -> None:
    messages: list = []  # type: ignore[type-arg]
    async with ResilientSession(model_for(emulator), SCALED_POLICY) as session:
        reader = asyncio.create_task(drain(session, messages))
        await session.wait_live()
        # 30 minutes of session time = 9 s here; 40 ms chunks every 40 ms.
        sent = await stream_audio(session, chunks=225, interval_s=0.04)
        await wait_for(lambda: len(emulator.recordings.session().audio_samples()) >= len(sent))
        stats = dataclasses.replace(session.stats)
    reader.cancel()
    received = emulator.recordings.session().audio_samples()
    assert stats.go_aways >= 3
    assert stats.resumptions >= 3 and stats.fresh_starts == 0
    assert len(emulator.recordings.sessions) == 1, "every connection resumed the same session"
    np.testing.assert_array_equal(received, sent)  # every sample once, in order
    assert stats.dropped_chunks == 0


async def test_drop_mid_turn_resumes_and_the_conversation_goes_on(emulator: Emulator) -> None:
    messages: list = []  # type: ignore[type-arg]
    async with ResilientSession(model_for(emulator)) as session:
        reader = asyncio.create_task(drain(session, messages))
        await session.wait_live()
        emulator.inject(Fault.drop(at=Trigger.REPLY))
        await session.send("first question")
        await wait_for(lambda: session.stats.resumptions == 1)
        await session.send("second question")  # waits for a live connection; never dropped
        await wait_for(
            lambda: (
                any(isinstance(m, LiveServerContent) and m.turn_complete for m in messages[-3:])
                and "second question" in emulator.recordings.session().texts()
            )
        )
        assert session.state is SessionState.LIVE
        gaps = session.stats.reconnect_gaps  # the time without a live connection, once
        assert gaps.count == 1 and 0.0 < gaps.sum < 10.0
    reader.cancel()
    assert emulator.recordings.session().texts().count("second question") == 1


async def test_drop_mid_tool_call_runs_once_and_sends_nothing_the_session_would_refuse(
    emulator_config: EmulatorConfig,
) -> None:
    scenario = Scenario.from_mapping(
        {
            "name": "tool",
            "turn": [
                {
                    "text": "lamp",
                    "call": [{"name": "set_lamp", "args": {"on": True}}],
                    "reply": "The lamp is on.",
                }
            ],
        }
    )
    config = dataclasses.replace(emulator_config, scenario=scenario, connection_lifetime_s=None)
    async with Emulator(config) as emulator, ResilientSession(model_for(emulator)) as session:
        await session.wait_live()
        emulator.inject(Fault.drop(at=Trigger.TOOL_CALL))
        await session.send("lamp on please")
        calls: list[LiveServerToolCall] = []
        async with asyncio.timeout(T):
            async for message in session.receive():
                if isinstance(message, LiveServerToolCall):
                    calls.append(message)
                    call = message.function_calls[0]
                    await wait_for(lambda: session.stats.resumptions >= 1)
                    await session.send_function_responses(
                        [FunctionResponse(id=call.id, name=call.name, response={"result": "on"})]
                    )
                    break
        # The resumed session was saved before the call: it does not know it, and a response
        # would close the connection with 1007. The conversation goes on instead.
        await session.send("are you there?")
        await wait_for(lambda: "are you there?" in emulator.recordings.session().texts())
        stats = dataclasses.replace(session.stats)
        received = emulator.recordings.session().received
    assert len(calls) == 1
    assert [r for r in received if r.kind == "toolResponse"] == []
    assert stats.stale_tool_responses == 1
    assert stats.resumptions == 1 and stats.failures == 1, "no 1007 close followed"


async def test_repeated_tool_call_is_handed_over_once(emulator_config: EmulatorConfig) -> None:
    scenario = Scenario.from_mapping(
        {
            "name": "tool",
            "turn": [
                {
                    "text": "lamp",
                    "call": [{"name": "set_lamp", "args": {"on": True}}],
                    "reply": "ok",
                }
            ],
        }
    )
    config = dataclasses.replace(emulator_config, scenario=scenario, connection_lifetime_s=None)
    async with Emulator(config) as emulator, ResilientSession(model_for(emulator)) as session:
        await session.wait_live()
        emulator.inject(Fault.repeat_tool_call())
        await session.send("lamp on please")
        seen: list[str] = []
        async with asyncio.timeout(T):
            async for message in session.receive():
                if isinstance(message, LiveServerToolCall):
                    seen.extend(c.id or "" for c in message.function_calls)
                    call = message.function_calls[0]
                    await session.send_function_responses(
                        [FunctionResponse(id=call.id, name=call.name, response={"result": "on"})]
                    )
                if isinstance(message, LiveServerContent) and message.turn_complete:
                    break
        assert session.stats.duplicate_tool_calls == 1
    assert len(seen) == 1


async def test_refused_handle_starts_a_fresh_session(emulator: Emulator) -> None:
    with structlog.testing.capture_logs() as logs:
        async with ResilientSession(model_for(emulator)) as session:
            await session.wait_live()
            await wait_for(lambda: session.handle is not None)
            session.handle = "no-such-handle"
            emulator.inject(Fault.drop())
            await wait_for(
                lambda: session.stats.fresh_starts == 1 and session.state is SessionState.LIVE
            )
            await session.send("still there?")
    assert any(entry["event"] == "session.context_lost" for entry in logs)
    assert len(emulator.recordings.sessions) == 2


async def test_a_bad_key_fails_fast_without_a_retry_storm(emulator_config: EmulatorConfig) -> None:
    config = dataclasses.replace(emulator_config, api_key="the-right-key")
    async with Emulator(config) as emulator:
        session = ResilientSession(model_for(emulator, key="a-wrong-key"))
        async with session:
            with pytest.raises(LiveSessionError) as info:
                async with asyncio.timeout(T):
                    await session.wait_live()
            assert session.state is SessionState.FAILED
            with pytest.raises(LiveSessionError):
                await session.send_audio_realtime(GenerativeContentBlob(AUDIO_INPUT_MIME, b"\0\0"))
            with pytest.raises(LiveSessionError):
                async for _ in session.receive():
                    pass
        assert emulator.connections == 1
    assert "API key" in str(info.value)


async def test_a_hundred_failures_follow_the_backoff_schedule(emulator: Emulator) -> None:
    for number in range(1, 101):
        emulator.inject(Fault.refuse_handshake(503), connection=number)
    delays: list[float] = []
    all_refused = asyncio.Event()

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 100:
            all_refused.set()
        await asyncio.sleep(0)

    policy = ReconnectPolicy(backoff_base_s=0.5, backoff_cap_s=30.0)
    session = ResilientSession(model_for(emulator), policy, rng=lambda: 1.0, sleep=record_sleep)
    async with session:
        # A hang guard over 101 handshakes: 0.2 s here, about 10 s under qemu-user on arm64.
        async with asyncio.timeout(6 * T):
            await all_refused.wait()
            await session.wait_live()
    assert delays[0] == 0.0, "the first retry comes at once"
    assert delays[1:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert all(d == 30.0 for d in delays[7:100])
    assert emulator.connections == 101, "one attempt per scheduled delay, no hot loop"


async def test_audio_sent_while_disconnected_is_replayed_in_order(emulator: Emulator) -> None:
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        if seconds > 0:
            await gate.wait()

    async with ResilientSession(model_for(emulator), rng=lambda: 1.0, sleep=held_sleep) as session:
        await session.wait_live()
        emulator.inject(Fault.refuse_handshake(503))  # the first reconnect fails
        emulator.inject(Fault.refuse_handshake(503), connection=3)  # ... and so does the next
        emulator.inject(Fault.drop())
        await wait_for(lambda: session.state is SessionState.BACKING_OFF)
        sent = await stream_audio(session, chunks=10, interval_s=0)
        await session.send_video_realtime(GenerativeContentBlob("image/jpeg", b"\xff\xd8old"))
        await session.send_video_realtime(GenerativeContentBlob("image/jpeg", b"\xff\xd8new"))
        gate.set()
        await wait_for(lambda: len(emulator.recordings.session().video) == 1)
        stats = dataclasses.replace(session.stats)
    recording = emulator.recordings.session()
    np.testing.assert_array_equal(recording.audio_samples(), sent)
    assert [frame.data for frame in recording.video] == [b"\xff\xd8new"]
    assert stats.replayed_chunks == 10


async def test_audio_sent_before_the_first_connection_is_not_counted_as_replayed(
    emulator: Emulator,
) -> None:
    session = ResilientSession(model_for(emulator))
    sent = await stream_audio(session, chunks=3, interval_s=0)  # before start(): held
    async with session:
        await session.wait_live()
        await wait_for(lambda: len(emulator.recordings.session().audio) == 3)
        stats = dataclasses.replace(session.stats)
    np.testing.assert_array_equal(emulator.recordings.session().audio_samples(), sent)
    assert stats.replayed_chunks == 0 and stats.dropped_chunks == 0
    assert "replayed 0" in stats.status_line()


async def test_replay_keeps_only_the_newest_five_seconds(emulator: Emulator) -> None:
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        if seconds > 0:
            await gate.wait()

    policy = ReconnectPolicy(replay_audio_s=0.4)  # 10 chunks of 40 ms
    async with ResilientSession(
        model_for(emulator), policy, rng=lambda: 1.0, sleep=held_sleep
    ) as session:
        await session.wait_live()
        emulator.inject(Fault.refuse_handshake(503))
        emulator.inject(Fault.refuse_handshake(503), connection=3)
        emulator.inject(Fault.drop())
        await wait_for(lambda: session.state is SessionState.BACKING_OFF)
        sent = await stream_audio(session, chunks=25, interval_s=0)
        gate.set()
        await wait_for(lambda: session.state is SessionState.LIVE)
        await wait_for(lambda: len(emulator.recordings.session().audio_samples()) >= 10 * CHUNK)
        stats = dataclasses.replace(session.stats)
    np.testing.assert_array_equal(emulator.recordings.session().audio_samples(), sent[15 * CHUNK :])
    assert stats.dropped_chunks == 15


async def test_state_listener_sees_the_lifecycle(emulator: Emulator) -> None:
    states: list[SessionState] = []
    session = ResilientSession(model_for(emulator))
    session.add_listener(lambda stats: states.append(stats.state))
    async with session:
        await session.wait_live()
        emulator.inject(Fault.close(1011, "The service is currently unavailable."))
        await wait_for(
            lambda: session.stats.resumptions == 1 and session.state is SessionState.LIVE
        )
    assert states[:2] == [SessionState.LIVE, SessionState.RESUMING]
    assert states[-2:] == [SessionState.LIVE, SessionState.CLOSED]
    assert "connections 2" in session.stats.status_line()
