"""The fake model: speech detection, replies, transcriptions, barge-in, scenarios."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agent.emulator import Emulator, EmulatorConfig, Scenario
from tests.support.emulator_client import (
    audio_bytes,
    content,
    setup_message,
    silence,
    tone,
    transcript,
    utterance,
)

TRANSCRIBE = {"inputAudioTranscription": {}, "outputAudioTranscription": {}}


async def test_spoken_turn_gets_a_full_reply(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message(**TRANSCRIBE))
    await client.send_audio(utterance())
    messages = await client.turn()

    assert transcript(messages, "inputTranscription") == "spoken turn 1"
    assert transcript(messages, "outputTranscription") == "You said: spoken turn 1"
    keys = [next(iter(m["serverContent"])) for m in messages if "serverContent" in m]
    assert keys.index("generationComplete") < keys.index("turnComplete")
    assert keys[-1] == "turnComplete" and "interrupted" not in keys
    parts = [p for t in content(messages, "modelTurn") for p in t["parts"]]
    assert {p["inlineData"]["mimeType"] for p in parts} == {"audio/pcm;rate=24000"}
    sizes = [len(base64.b64decode(p["inlineData"]["data"])) for p in parts]
    assert len(sizes) > 1 and max(sizes) < 1 << 20  # split into frames well under 1 MiB
    pcm = np.frombuffer(audio_bytes(messages), dtype="<i2")
    seconds = pcm.size / 24000
    assert 1.0 < seconds < 1.6  # 23 characters at 55 ms each
    assert np.abs(pcm).max() > 3000  # audible
    usage = messages[-1]["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]
    assert {d["modality"] for d in usage["responseTokensDetails"]} == {"AUDIO"}


async def test_reply_audio_is_paced_in_scaled_real_time(open_client: Any) -> None:
    async with Emulator(EmulatorConfig(time_scale=0.5)) as emu:
        client = await open_client(emu, setup_message())
        await client.send({"realtimeInput": {"text": "pace me"}})
        start = asyncio.get_running_loop().time()
        messages = await client.turn()
        elapsed = asyncio.get_running_loop().time() - start
    seconds = len(audio_bytes(messages)) / 2 / 24000
    # the last chunk leaves at (n-1)/n of the audio's length, scaled by 0.5
    assert elapsed >= 0.5 * seconds * 0.7


async def test_text_modality_and_typed_turns(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(
        emulator, setup_message(generationConfig={"responseModalities": ["TEXT"]})
    )
    await client.send(
        {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "first"}]}]}}
    )
    await client.send({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "part"}]}],
                                         "turnComplete": True}})  # fmt: skip
    messages = await client.turn()
    text = "".join(p["text"] for t in content(messages, "modelTurn") for p in t["parts"])
    assert text == "You said: first part"
    assert messages[-1]["usageMetadata"]["responseTokensDetails"][0]["modality"] == "TEXT"

    await client.send({"realtimeInput": {"text": "realtime words"}})
    messages = await client.turn()
    text = "".join(p["text"] for t in content(messages, "modelTurn") for p in t["parts"])
    assert text == "You said: realtime words"


async def test_silence_duration_from_setup_keeps_a_pause_inside_one_turn(
    emulator: Emulator, open_client: Any
) -> None:
    client = await open_client(
        emulator,
        setup_message(
            realtimeInputConfig={"automaticActivityDetection": {"silenceDurationMs": 1000}}
        ),
    )
    # a 700 ms pause would end the turn at the default 600 ms, not at 1000 ms
    await client.send_audio(np.concatenate([tone(0.3), silence(0.7), tone(0.3), silence(1.2)]))
    await client.turn()
    await client.send({"realtimeInput": {"text": "next"}})
    messages = await client.turn()
    assert transcript(messages, "outputTranscription") == "" and audio_bytes(messages)
    assert emulator.sessions.sessions[next(iter(emulator.sessions.sessions))].state.user_turns == 2


async def test_quiet_audio_is_not_speech_unless_sensitivity_is_high(
    emulator: Emulator, open_client: Any
) -> None:
    quiet = np.concatenate([tone(0.4, amplitude=250), silence(0.8)])  # about -45 dBFS
    client = await open_client(emulator, setup_message())
    await client.send_audio(quiet)
    await client.send({"realtimeInput": {"text": "typed"}})
    messages = await client.turn()
    assert "spoken" not in transcript(messages, "inputTranscription")

    sensitive = await open_client(
        emulator,
        setup_message(
            inputAudioTranscription={},
            realtimeInputConfig={
                "automaticActivityDetection": {"startOfSpeechSensitivity": "START_SENSITIVITY_HIGH"}
            },
        ),
    )
    await sensitive.send_audio(quiet)
    messages = await sensitive.turn()
    assert transcript(messages, "inputTranscription") == "spoken turn 1"


async def test_speaking_over_the_model_interrupts_it(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message())
    await client.send({"realtimeInput": {"text": "say something long " * 10}})
    first = await client.recv_until(lambda m: "modelTurn" in m.get("serverContent", {}))
    assert first
    await client.send_audio(tone(0.2))
    messages = await client.recv_until(lambda m: "interrupted" in m.get("serverContent", {}))
    after = await client.recv()
    assert after == {"serverContent": {"turnComplete": True}}
    keys = [k for m in messages for k in m.get("serverContent", {})]
    assert "generationComplete" not in keys
    # the utterance that interrupted is answered once it ends
    await client.send_audio(silence(0.8))
    reply = await client.turn()
    assert audio_bytes(reply)


async def test_no_interruption_lets_the_model_finish(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(
        emulator, setup_message(realtimeInputConfig={"activityHandling": "NO_INTERRUPTION"})
    )
    await client.send({"realtimeInput": {"text": "say something long " * 5}})
    await client.recv_until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send_audio(utterance())
    first = await client.turn()
    second = await client.turn()
    keys = [k for m in first + second for k in m.get("serverContent", {})]
    assert "interrupted" not in keys and keys.count("generationComplete") == 2


async def test_manual_activity_signals(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(
        emulator,
        setup_message(
            inputAudioTranscription={},
            realtimeInputConfig={"automaticActivityDetection": {"disabled": True}},
        ),
    )
    await client.send_audio(utterance())  # ignored for turn-taking: detection is off
    await client.send({"realtimeInput": {"activityStart": {}}})
    await client.send_audio(silence(0.2))
    await client.send({"realtimeInput": {"activityEnd": {}}})
    messages = await client.turn()
    assert transcript(messages, "inputTranscription") == "spoken turn 1"
    # a second activityEnd without a start is a violation
    await client.send({"realtimeInput": {"activityEnd": {}}})
    assert (await client.closed())[0] == 1007


async def test_activity_start_interrupts_a_reply(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(
        emulator,
        setup_message(realtimeInputConfig={"automaticActivityDetection": {"disabled": True}}),
    )
    await client.send({"realtimeInput": {"text": "long " * 40}})
    await client.recv_until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send({"realtimeInput": {"activityStart": {}}})
    await client.recv_until(lambda m: "interrupted" in m.get("serverContent", {}))


async def test_audio_stream_end_ends_the_utterance(emulator: Emulator, open_client: Any) -> None:
    client = await open_client(emulator, setup_message(inputAudioTranscription={}))
    await client.send_audio(tone(0.3))
    await client.send({"realtimeInput": {"audioStreamEnd": True}})
    messages = await client.turn()
    assert transcript(messages, "inputTranscription") == "spoken turn 1"


LAMP = """
[[turn]]
spoken = 1
said = "hello there"
reply = "Hi!"

[[turn]]
spoken = 2
said = "switch the lamp on"
call = [{ name = "set_lamp", args = { on = true } }]
reply = "The lamp is on"

[[turn]]
text = "weather"
reply = "Sunny."

[[turn]]
turn = 4
reply = "Fourth."
"""


async def test_scenario_calls_a_tool_on_the_second_utterance_then_replies(
    fast: Callable[..., EmulatorConfig], open_client: Any
) -> None:
    config = fast(scenario=Scenario.parse(LAMP))
    async with Emulator(config) as emu:
        client = await open_client(
            emu,
            setup_message(
                generationConfig={"responseModalities": ["TEXT"]},
                inputAudioTranscription={},
                tools=[{"functionDeclarations": [{"name": "set_lamp"}]}],
            ),
        )
        await client.send_audio(utterance())
        first = await client.turn()
        assert transcript(first, "inputTranscription") == "hello there"
        assert _text(first) == "Hi!"

        await client.send_audio(utterance())
        messages = await client.recv_until(lambda m: "toolCall" in m)
        assert transcript(messages, "inputTranscription") == "switch the lamp on"
        (call,) = messages[-1]["toolCall"]["functionCalls"]
        assert call["name"] == "set_lamp" and call["args"] == {"on": True}
        # nothing more until the function response arrives
        with pytest.raises(TimeoutError):
            await client.recv(within=0.3)
        await client.send({"toolResponse": {"functionResponses": [
            {"id": call["id"], "name": "set_lamp", "response": {"ok": True}}]}})  # fmt: skip
        assert _text(await client.turn()) == "The lamp is on"

        await client.send({"realtimeInput": {"text": "What's the Weather like?"}})
        assert _text(await client.turn()) == "Sunny."
        await client.send({"realtimeInput": {"text": "anything"}})
        assert _text(await client.turn()) == "Fourth."
        await client.send({"realtimeInput": {"text": "anything else"}})
        assert _text(await client.turn()) == "You said: anything else"


def _text(messages: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for t in content(messages, "modelTurn") for p in t["parts"])
