"""What the conversation times: the end of the user's speech to the reply's first audio, and a
tool call from its arrival to its response, against a scripted server that waits on purpose."""

from __future__ import annotations

import asyncio

import numpy as np

from agent.live.conversation import start_audio_conversation
from agent.live.types import FunctionCall
from agent.media.audio import EnergySpeechDetector

from .conftest import ScriptedServer
from .test_conversation import Chunks, RecordingSink, audio_part, until

MODEL_DELAY_S = 0.2


def spoken_chunks() -> list[bytes]:
    t = np.arange(int(0.6 * 16000)) / 16000
    speech = 0.1 * np.sin(2 * np.pi * 300 * t)
    quiet = np.zeros(8000)
    pcm = (np.concatenate([quiet, speech, quiet]) * 32767).astype("<i2").tobytes()
    return [pcm[i : i + 1280] for i in range(0, len(pcm) - 1279, 1280)]


async def test_voice_latency_runs_from_the_speech_gate_to_the_first_reply_audio(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(
        session, source=Chunks(spoken_chunks()), sink=sink,
        vad=EnergySpeechDetector(hangover_ms=120),
    )
    while "audioStreamEnd" not in (await conn.expect())["realtimeInput"]:
        pass
    await asyncio.sleep(MODEL_DELAY_S)
    reply = {"modelTurn": {"parts": [audio_part(b"\x01\x00" * 240)]}}
    for _ in range(3):
        await conn.send({"serverContent": reply})
    await until(lambda: len(sink.writes) == 3)
    latency = controller.stats.voice_latency
    assert latency.count == 1  # the first audio of the reply only
    assert MODEL_DELAY_S <= latency.sum < MODEL_DELAY_S + 1.0
    await controller.stop()
    await session.close()


async def test_without_a_speech_gate_the_service_says_where_speech_ended(
    live_server: ScriptedServer,
) -> None:
    session, conn = await live_server.connect()
    sink = RecordingSink()
    controller = await start_audio_conversation(session, source=Chunks([]), sink=sink)
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\x01\x00")]}}})
    await until(lambda: len(sink.writes) == 1)
    assert controller.stats.voice_latency.count == 0  # nobody had spoken
    # Speech over a reply still playing: the next audio is that reply's, not an answer.
    await conn.send({"voiceActivity": {"voiceActivityType": "ACTIVITY_END"}})
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\x01\x00")]}}})
    await until(lambda: len(sink.writes) == 2)
    assert controller.stats.voice_latency.count == 0
    await conn.send({"serverContent": {"turnComplete": True}})
    await conn.send({"voiceActivity": {"voiceActivityType": "ACTIVITY_END"}})
    await asyncio.sleep(MODEL_DELAY_S)
    await conn.send({"serverContent": {"modelTurn": {"parts": [audio_part(b"\x01\x00")]}}})
    await until(lambda: len(sink.writes) == 3)
    assert controller.stats.voice_latency.count == 1
    assert controller.stats.voice_latency.sum >= MODEL_DELAY_S
    await controller.stop()
    await session.close()


async def test_tool_call_latency_includes_the_handler(live_server: ScriptedServer) -> None:
    session, conn = await live_server.connect()

    async def handler(call: FunctionCall) -> dict[str, str]:
        await asyncio.sleep(MODEL_DELAY_S)
        return {"result": "done"}

    controller = await start_audio_conversation(
        session, source=Chunks([]), sink=RecordingSink(), function_calling_handler=handler)
    await conn.send({"toolCall": {"functionCalls": [{"id": "1", "name": "f", "args": {}}]}})
    assert "toolResponse" in await conn.expect()
    await until(lambda: controller.stats.tool_latency.count == 1)
    assert MODEL_DELAY_S <= controller.stats.tool_latency.sum < MODEL_DELAY_S + 1.0
    await controller.stop()
    await session.close()
