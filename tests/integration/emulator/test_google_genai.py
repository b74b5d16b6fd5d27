"""google-genai, a client this project did not write, runs a whole turn against the emulator.

Over TLS, as google-genai insists on wss:// for the Developer API (live-protocol.md §9).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors, types
from PIL import Image

from agent.emulator import Emulator, EmulatorConfig, Scenario, client_context
from tests.support.emulator_client import utterance

SCENARIO = Scenario.parse(
    """
    [[turn]]
    spoken = 1
    said = "switch the lamp on"
    call = [{ name = "set_lamp", args = { on = true } }]
    reply = "The lamp is on."

    [[turn]]
    text = "colour"
    reply = "It is warm white."
    """
)
LAMP = types.FunctionDeclaration(
    name="set_lamp",
    description="Switch the lamp",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"on": types.Schema(type=types.Type.BOOLEAN)}
    ),
)


@pytest_asyncio.fixture
async def tls_emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(tls=True, api_key="fake-key", scenario=SCENARIO, time_scale=0.05)
    async with Emulator(config) as emu:
        yield emu


def _client(emu: Emulator, api_key: str = "fake-key") -> genai.Client:
    assert emu.cert_path is not None
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{emu.port}",
            api_version="v1beta",
            async_client_args={"ssl": client_context(emu.cert_path)},
        ),
    )


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, format="JPEG")
    return out.getvalue()


async def test_a_whole_turn_with_audio_video_text_and_a_tool_call(tls_emulator: Emulator) -> None:
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[types.Tool(function_declarations=[LAMP])],
        session_resumption=types.SessionResumptionConfig(),
    )
    jpeg, pcm = _jpeg(), utterance()
    client = _client(tls_emulator)
    async with asyncio.timeout(15):
        async with client.aio.live.connect(
            model="gemini-live-2.5-flash-preview", config=config
        ) as session:
            await session.send_realtime_input(video=types.Blob(data=jpeg, mime_type="image/jpeg"))
            for i in range(0, pcm.size, 640):
                await session.send_realtime_input(
                    audio=types.Blob(
                        data=pcm[i : i + 640].tobytes(), mime_type="audio/pcm;rate=16000"
                    )
                )
            heard, said, audio, calls, handles = "", "", b"", [], []
            async for message in session.receive():
                content = message.server_content
                if message.tool_call:
                    calls.extend(message.tool_call.function_calls or [])
                    await session.send_tool_response(
                        function_responses=[
                            types.FunctionResponse(id=c.id, name=c.name, response={"ok": True})
                            for c in message.tool_call.function_calls or []
                        ]
                    )
                if (
                    message.session_resumption_update
                    and message.session_resumption_update.new_handle
                ):
                    handles.append(message.session_resumption_update.new_handle)
                if content and content.input_transcription:
                    heard += content.input_transcription.text or ""
                if content and content.output_transcription:
                    said += content.output_transcription.text or ""
                if content and content.model_turn:
                    for part in content.model_turn.parts or []:
                        if part.inline_data and part.inline_data.data:
                            assert part.inline_data.mime_type == "audio/pcm;rate=24000"
                            audio += part.inline_data.data
            assert message.server_content and message.server_content.turn_complete
            assert message.usage_metadata and message.usage_metadata.total_token_count
            assert heard == "switch the lamp on" and said == "The lamp is on."
            assert [(c.name, c.args) for c in calls] == [("set_lamp", {"on": True})]
            assert len(audio) > 24000  # over half a second of 24 kHz speech
            assert handles  # the handle sent with setupComplete

            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="what colour is it?")]),
                turn_complete=True,
            )
            said = ""
            async for message in session.receive():
                content = message.server_content
                if content and content.output_transcription:
                    said += content.output_transcription.text or ""
            assert said == "It is warm white."

    rec = tls_emulator.recordings.session()
    assert [v.data for v in rec.video] == [jpeg]  # URL-safe base64 decoded exactly
    assert np.array_equal(rec.audio_samples(), pcm)
    kinds = rec.connections[0].kinds()
    assert kinds[0] == "setup" and "toolResponse" in kinds and kinds[-1] == "clientContent"


async def test_a_wrong_key_surfaces_the_close_reason(tls_emulator: Emulator) -> None:
    client = _client(tls_emulator, api_key="wrong-key")
    with pytest.raises(errors.APIError) as info:
        async with asyncio.timeout(10):
            async with client.aio.live.connect(model="gemini-live-2.5-flash-preview"):
                pass
    assert "1007" in str(info.value) and "API key not valid" in str(info.value)


async def test_text_modality(tls_emulator: Emulator) -> None:
    client = _client(tls_emulator)
    config: Any = {"response_modalities": ["TEXT"]}
    async with asyncio.timeout(10):
        async with client.aio.live.connect(
            model="gemini-live-2.5-flash-preview", config=config
        ) as session:
            await session.send_realtime_input(text="hello emulator")
            text = ""
            async for message in session.receive():
                text += message.text or ""
    assert text == "You said: hello emulator"


async def _one_text_turn(client: genai.Client, model: str) -> str:
    config: Any = {"response_modalities": ["TEXT"]}
    text = ""
    async with asyncio.timeout(10):
        async with client.aio.live.connect(model=model, config=config) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="hi")]), turn_complete=True
            )
            async for message in session.receive():
                text += message.text or ""
    return text


@pytest.mark.filterwarnings("ignore:The SDK's ephemeral token support is experimental")
async def test_ephemeral_token_dialect() -> None:
    token = "auth_tokens/fake-token"
    async with Emulator(EmulatorConfig(tls=True, api_key=token, time_scale=0.05)) as emu:
        assert emu.cert_path is not None
        client = genai.Client(
            api_key=token,
            http_options=types.HttpOptions(
                base_url=f"https://127.0.0.1:{emu.port}",
                api_version="v1alpha",
                async_client_args={"ssl": client_context(emu.cert_path)},
            ),
        )
        assert await _one_text_turn(client, "gemini-live-2.5-flash-preview") == "You said: hi"
        path = emu.recordings.connection(1).path
        assert path.endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")


async def test_vertex_dialect_with_a_bearer_token() -> None:
    from google.oauth2.credentials import Credentials

    config = EmulatorConfig(tls=True, api_key="fake-bearer", time_scale=0.05)
    async with Emulator(config) as emu:
        assert emu.cert_path is not None
        client = genai.Client(
            vertexai=True,
            project="p",
            location="us-central1",
            credentials=Credentials(token="fake-bearer"),
            http_options=types.HttpOptions(
                base_url=f"https://127.0.0.1:{emu.port}",
                async_client_args={"ssl": client_context(emu.cert_path)},
            ),
        )
        assert await _one_text_turn(client, "gemini-live-2.5-flash") == "You said: hi"
        rec = emu.recordings.connection(1)
        assert rec.path == "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
        setup = rec.received[0].message["setup"]
        assert setup["model"].endswith("publishers/google/models/gemini-live-2.5-flash")


async def test_initial_history_the_way_google_genai_sends_it() -> None:
    """google-genai's history_config (snake_case inside, as it sends it) against an emulator
    that takes clientContent only as initial history, like gemini-3.1-flash-live."""
    scenario = Scenario.from_mapping({"name": "memory",
                                      "default_reply": "Before that you said: {previous}"})
    config = EmulatorConfig(tls=True, api_key="fake-key", scenario=scenario, time_scale=0.05,
                            client_content="initial_history_only")
    seed = [types.Content(role="user", parts=[types.Part(text="my name is Ada")]),
            types.Content(role="model", parts=[types.Part(text="Hello Ada.")])]
    history = types.HistoryConfig(initial_history_in_client_content=True)
    async with Emulator(config) as emu:
        client = _client(emu)
        text = ""
        async with asyncio.timeout(10):
            async with client.aio.live.connect(
                model="gemini-live-2.5-flash-preview",
                config=types.LiveConnectConfig(response_modalities=[types.Modality.TEXT],
                                               history_config=history),
            ) as session:
                await session.send_client_content(turns=seed, turn_complete=True)
                await session.send_realtime_input(text="what is my name?")
                async for message in session.receive():
                    text += message.text or ""
        assert text == "Before that you said: my name is Ada"
        assert emu.stats.replies == 1, "the history was not answered"
        setup = emu.recordings.connection(1).received[0].message["setup"]
        assert setup["historyConfig"] == {"initial_history_in_client_content": True}

        with pytest.raises(errors.APIError) as info:  # without history_config: refused
            async with asyncio.timeout(10):
                async with client.aio.live.connect(
                    model="gemini-live-2.5-flash-preview",
                    config=types.LiveConnectConfig(response_modalities=[types.Modality.TEXT]),
                ) as session:
                    await session.send_client_content(turns=seed, turn_complete=True)
                    async for _ in session.receive():
                        pass
    assert "1007" in str(info.value) and "historyConfig" in str(info.value)
