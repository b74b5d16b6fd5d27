"""The whole path, thin: a WAV of two spoken commands -> capture conversion -> ResilientSession ->
emulator (real WebSocket on 127.0.0.1) -> toolCall -> tool registry -> gpiozero mock pin ->
functionResponse -> the model's spoken reply -> WAV sink."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from agent.config.gpio import parse_tools
from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.conversation import dispatcher_handler, start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ResilientSession
from agent.live.types import (
    AudioTranscriptionConfig,
    FunctionDeclaration,
    LiveGenerationConfig,
    Tool,
)
from agent.media.audio import WavFileSink, WavFileSource
from agent.tools import ToolRegistry
from tests.support.emulator_client import LAMP_SCENARIO, write_spoken_commands


async def test_spoken_command_moves_a_pin_and_the_reply_is_heard(tmp_path: Path) -> None:
    commands, reply = tmp_path / "commands.wav", tmp_path / "reply.wav"
    write_spoken_commands(commands, gap_s=1.2)
    registry = ToolRegistry(
        parse_tools(
            [
                {
                    "name": "set_lamp",
                    "description": "Switch the lamp.",
                    "kind": "digital_output",
                    "pin": 17,
                }
            ]
        ),
        pin_factory="mock",
    )
    config = EmulatorConfig(time_scale=0.2, scenario=Scenario.from_mapping(LAMP_SCENARIO))
    events: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    async with Emulator(config) as emulator:
        registry.open()
        declarations = [FunctionDeclaration(**d) for d in registry.declarations()]
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key="k", endpoint=emulator.url),
            model="gemini-live-2.5-flash-preview",
            generation_config=LiveGenerationConfig(
                response_modalities=["AUDIO"],
                input_audio_transcription=AudioTranscriptionConfig(),
                output_audio_transcription=AudioTranscriptionConfig(),
            ),
            tools=[Tool(function_declarations=declarations)],
        )
        sink = WavFileSink(reply)
        await sink.start()
        async with ResilientSession(model) as session:
            await session.wait_live()
            controller = await start_audio_conversation(
                session,
                source=WavFileSource(commands, realtime=True),
                sink=sink,
                function_calling_handler=dispatcher_handler(registry),
                on_event=lambda name, fields: events.append((name, fields)),
            )
            async with asyncio.timeout(20):
                while not any(name == "model.turn_complete" for name, _ in events[-1:]) or (
                    controller.stats.tool_calls == 0
                ):
                    await asyncio.sleep(0.02)
                while "The lamp is on." not in "".join(controller.stats.model_transcript):
                    await asyncio.sleep(0.02)
            pin_after_call = registry.describe_pins()["set_lamp"]
            await controller.stop()
            assert not session.in_conversation
        await sink.stop()
        registry.close()
        responses = [r for r in emulator.recordings.session().received if r.kind == "toolResponse"]
    assert pin_after_call["state"] in ({"on": True}, {"value": True}, {"is_active": True}) or (
        any(v == 1 for v in pin_after_call["pins"].values())
    ), pin_after_call
    assert len(responses) == 1
    body = responses[0].message.get("toolResponse") or responses[0].message.get("tool_response")
    [response] = body["functionResponses"]
    assert response["id"] == "function-call-1" and "error" not in response["response"]
    transcript = "".join(controller.stats.user_transcript)
    assert "switch the lamp on" in transcript
    with wave.open(str(reply)) as wav:
        assert wav.getframerate() == 24000
        heard = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert len(heard) > 24000 * 0.5, "the model's replies reached the speaker"
    assert np.abs(heard).max() > 1000
