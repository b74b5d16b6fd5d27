"""Resumption handles, goAway and connection lifetime, the context window."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.emulator import Emulator, EmulatorConfig, Scenario
from tests.support.emulator_client import setup_message, transcript, utterance

HANDLES = {"sessionResumption": {}, "inputAudioTranscription": {}}
VERTEX = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
VERTEX_MODEL = "projects/p/locations/us-central1/publishers/google/models/m"


def _handles(messages: list[dict[str, Any]]) -> list[str]:
    return [
        m["sessionResumptionUpdate"]["newHandle"]
        for m in messages
        if m.get("sessionResumptionUpdate", {}).get("resumable")
    ]


async def test_handles_are_sent_when_requested_only(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message(**HANDLES))
    update = await client.recv()
    assert update["sessionResumptionUpdate"]["resumable"] is True
    await client.send({"realtimeInput": {"text": "hi"}})
    messages = await client.turn()
    messages.append(await client.recv())
    assert len(_handles([update, *messages])) == 2

    plain = await open_client(emulator, setup_message())
    await plain.send({"realtimeInput": {"text": "hi"}})
    messages = await plain.turn()
    assert not [m for m in messages if "sessionResumptionUpdate" in m]


async def test_resume_keeps_the_conversation_state(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    scenario = Scenario.parse(
        '[[turn]]\nspoken = 1\nsaid = "one"\n[[turn]]\nspoken = 2\nsaid = "two"\n'
    )
    async with Emulator(fast(scenario=scenario)) as emu:
        first = await open_client(emu, setup_message(**HANDLES))
        await first.recv()
        await first.send_audio(utterance())
        messages = await first.turn()
        assert transcript(messages, "inputTranscription") == "one"
        handle = _handles([await first.recv()])[0]
        await first.ws.close()

        second = await open_client(emu, setup_message(sessionResumption={"handle": handle},
                                                      inputAudioTranscription={}))  # fmt: skip
        await second.send_audio(utterance())
        messages = await second.turn()
        assert transcript(messages, "inputTranscription") == "two"
        session = emu.recordings.session()
        assert [c.number for c in session.connections] == [1, 2]
        assert session.connections[1].resumed
        assert emu.stats.sessions == 1 and emu.stats.resumed == 1
        state = emu.sessions.sessions[session.session_id].state
        assert state.history == [("user", "one"), ("model", "You said: one"),
                                 ("user", "two"), ("model", "You said: two")]  # fmt: skip


async def test_an_old_handle_restores_the_state_it_was_issued_for(
    emulator: Emulator, open_client: Any
) -> None:
    client = await open_client(emulator, setup_message(**HANDLES))
    early = _handles([await client.recv()])[0]
    for _ in range(2):
        await client.send({"realtimeInput": {"text": "x"}})
        await client.turn()
    await client.ws.close()
    resumed = await open_client(emulator, setup_message(sessionResumption={"handle": early}))
    assert resumed.setup_complete is not None
    state = emulator.sessions.sessions[emulator.recordings.session().session_id].state
    assert state.user_turns == 0


async def test_unknown_and_expired_handles_are_refused(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(handle_ttl_s=0.3)) as emu:
        bogus = await open_client(emu)
        await bogus.send(setup_message(sessionResumption={"handle": "no-such-handle"}))
        assert await bogus.closed() == (1007, "Request contains an invalid argument.")

        client = await open_client(emu, setup_message(**HANDLES))
        handle = _handles([await client.recv()])[0]
        await client.ws.close()
        await asyncio.sleep(0.5)
        late = await open_client(emu)
        await late.send(setup_message(sessionResumption={"handle": handle}))
        assert await late.closed() == (1007, "Request contains an invalid argument.")


async def test_the_model_cannot_change_on_resumption(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message(**HANDLES))
    handle = _handles([await client.recv()])[0]
    await client.ws.close()
    other = await open_client(emulator)
    await other.send(setup_message("models/other", sessionResumption={"handle": handle}))
    assert (await other.closed())[0] == 1007


async def test_resuming_while_the_old_socket_is_open_fails(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(concurrent_resume_grace_s=0.1)) as emu:
        client = await open_client(emu, setup_message(**HANDLES))
        handle = _handles([await client.recv()])[0]
        second = await open_client(emu)
        await second.send(setup_message(sessionResumption={"handle": handle}))
        assert await second.closed() == (1011, "Internal error encountered.")


async def test_go_away_before_the_lifetime_then_deadline_close(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    async with Emulator(fast(connection_lifetime_s=10.0, go_away_before_s=4.0)) as emu:
        client = await open_client(emu, setup_message())
        loop = asyncio.get_running_loop()
        start = loop.time()
        message = await client.recv()
        went_away = loop.time() - start
        assert message == {"goAway": {"timeLeft": "0.2s"}}  # 4 s scaled by 0.05
        assert await client.closed() == (1011, "Deadline expired before operation could complete.")
        closed = loop.time() - start
        assert went_away >= 0.2 and closed - went_away >= 0.15


async def test_without_compression_the_session_ends_at_the_budget(
    open_client: Any,
) -> None:
    async with Emulator(EmulatorConfig(session_token_budget=100)) as emu:
        client = await open_client(emu, setup_message(**HANDLES))
        handle = _handles([await client.recv()])[0]
        # 32 tokens per second of audio: 4 s overflows 100 tokens
        await client.send_audio(np.zeros(4 * 16000, dtype="<i2"))
        code, _ = await client.closed()
        assert code == 1007
        again = await open_client(emu)
        await again.send(setup_message(sessionResumption={"handle": handle}))
        assert (await again.closed())[0] == 1007


async def test_compression_keeps_the_session_going(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(session_token_budget=100, time_scale=0.05)) as emu:
        client = await open_client(
            emu,
            setup_message(contextWindowCompression={"triggerTokens": 80,
                                                    "slidingWindow": {"targetTokens": 40}}),
        )  # fmt: skip
        await client.send_audio(np.zeros(10 * 16000, dtype="<i2"))
        await client.send({"realtimeInput": {"text": "still here"}})
        messages = await client.turn()
        assert messages[-1]["usageMetadata"]["promptTokenCount"] <= 80
        state = emu.sessions.sessions[emu.recordings.session().session_id].state
        assert state.compressions >= 1


async def test_transparent_resumption_reports_the_last_consumed_index(
    emulator: Emulator, open_client: Any
) -> None:
    client = await open_client(
        emulator,
        setup_message(VERTEX_MODEL, sessionResumption={"transparent": True}),
        path=VERTEX,
    )
    await client.recv()
    await client.send({"realtimeInput": {"text": "a"}})
    messages = await client.turn()
    messages.append(await client.recv())
    update = messages[-1]["sessionResumptionUpdate"]
    assert update["lastConsumedClientMessageIndex"] == "0"
    assert "candidatesTokenCount" in messages[-2]["usageMetadata"]  # Vertex naming
