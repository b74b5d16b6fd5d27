"""Our wire format, checked by Google's own schema: every client frame validates as
google-genai's ``LiveClientMessage`` (which forbids unknown fields), and server frames that
google-genai builds from ``LiveServerMessage`` parse into the same values here."""

from __future__ import annotations

import pytest
from google.genai import types as genai

from agent.live import protocol
from agent.live.model import FirebaseVertexAIBackend, GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.types import (
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    Content,
    ContextWindowCompression,
    FunctionDeclaration,
    FunctionResponse,
    GenerativeContentBlob,
    LiveGenerationConfig,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveSessionResumptionUpdate,
    LiveUsageMetadata,
    Part,
    RealtimeInputConfig,
    SessionResumptionConfig,
    SpeechConfig,
    Tool,
)

PCM = bytes(range(256)) * 5
JPEG = bytes.fromhex("ffd8ffe000104a464946") + b"\x00" * 32 + bytes.fromhex("ffd9")


def validate(frame: str) -> genai.LiveClientMessage:
    return genai.LiveClientMessage.model_validate_json(frame)


def full_model(backend: object) -> LiveGenerativeModel:
    return LiveGenerativeModel(
        backend=backend,  # type: ignore[arg-type]
        model="gemini-live-2.5-flash-preview",
        generation_config=LiveGenerationConfig(
            response_modalities=["AUDIO"],
            speech_config=SpeechConfig(voice_name="Puck", language_code="en-US"),
            media_resolution="MEDIA_RESOLUTION_LOW",
            temperature=0.7,
            top_p=0.9,
            top_k=20,
            max_output_tokens=512,
            seed=3,
            enable_affective_dialog=True,
            input_audio_transcription=AudioTranscriptionConfig(),
            output_audio_transcription=AudioTranscriptionConfig(),
            context_window_compression=ContextWindowCompression(25600, 12800),
        ),
        tools=[
            Tool(
                function_declarations=[
                    FunctionDeclaration(
                        name="set_lamp",
                        description="Switch the lamp on or off",
                        parameters={
                            "type": "OBJECT",
                            "properties": {"on": {"type": "BOOLEAN"}},
                            "required": ["on"],
                        },
                        behavior="BLOCKING",
                    )
                ]
            )
        ],
        system_instruction="You control a lamp.",
        realtime_input_config=RealtimeInputConfig(
            automatic_activity_detection=AutomaticActivityDetection(
                disabled=False,
                start_of_speech_sensitivity="START_SENSITIVITY_LOW",
                end_of_speech_sensitivity="END_SENSITIVITY_HIGH",
                prefix_padding_ms=20,
                silence_duration_ms=500,
            ),
            activity_handling="START_OF_ACTIVITY_INTERRUPTS",
            turn_coverage="TURN_INCLUDES_ONLY_ACTIVITY",
        ),
        proactivity={"proactiveAudio": True},
    )


@pytest.mark.parametrize(
    "backend",
    [
        GeminiDeveloperBackend(api_key="k"),
        FirebaseVertexAIBackend(api_key="k", project_id="p"),
    ],
)
def test_setup_frame_with_every_option_is_valid(backend: object) -> None:
    model = full_model(backend)
    body = model.setup_message(SessionResumptionConfig("h"))
    # google-genai's LiveClientSetup type lacks realtimeInputConfig (its converters add it to
    # the frame from LiveConnectConfig), so that member is checked against its own type.
    realtime = genai.RealtimeInputConfig.model_validate(body.pop("realtimeInputConfig"))
    aad = realtime.automatic_activity_detection
    assert aad is not None and aad.silence_duration_ms == 500
    assert aad.start_of_speech_sensitivity == genai.StartSensitivity.START_SENSITIVITY_LOW
    assert realtime.activity_handling == genai.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS
    setup = validate(protocol.setup_frame(body)).setup
    assert setup is not None
    assert setup.model == backend.model_path("gemini-live-2.5-flash-preview")  # type: ignore[attr-defined]
    gen = setup.generation_config
    assert gen is not None
    assert gen.response_modalities == [genai.Modality.AUDIO]
    assert gen.speech_config is not None and gen.speech_config.voice_config is not None
    assert gen.speech_config.voice_config.prebuilt_voice_config is not None
    assert gen.speech_config.voice_config.prebuilt_voice_config.voice_name == "Puck"
    assert gen.media_resolution == genai.MediaResolution.MEDIA_RESOLUTION_LOW
    assert (gen.temperature, gen.top_p, gen.top_k, gen.max_output_tokens, gen.seed) == (
        0.7,
        0.9,
        20,
        512,
        3,
    )
    assert gen.enable_affective_dialog is True
    assert setup.input_audio_transcription is not None
    assert setup.output_audio_transcription is not None
    assert setup.context_window_compression is not None
    assert setup.context_window_compression.trigger_tokens == 25600
    assert setup.context_window_compression.sliding_window is not None
    assert setup.context_window_compression.sliding_window.target_tokens == 12800
    assert setup.session_resumption is not None and setup.session_resumption.handle == "h"
    assert setup.tools is not None
    declaration = setup.tools[0].function_declarations[0]  # type: ignore[index]
    assert declaration.name == "set_lamp"
    assert declaration.behavior == genai.Behavior.BLOCKING
    assert declaration.parameters is not None and declaration.parameters.required == ["on"]
    assert setup.proactivity is not None and setup.proactivity.proactive_audio is True
    assert setup.system_instruction is not None


def test_initial_history_is_declared_as_google_genai_declares_it() -> None:
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k"), model="m")
    body = model.setup_message(initial_history=True)
    # google-genai's own LiveConnectConfig(history_config=...), in wire (camelCase) form
    config = genai.LiveConnectConfig(
        history_config=genai.HistoryConfig(initial_history_in_client_content=True)
    )
    assert body["historyConfig"] == config.model_dump(by_alias=True, exclude_none=True)[
        "historyConfig"
    ]
    setup = validate(protocol.setup_frame(body)).setup
    assert setup is not None and setup.history_config is not None
    assert setup.history_config.initial_history_in_client_content is True
    assert "historyConfig" not in model.setup_message(), "only when asked for"
    assert "historyConfig" not in model.setup_message(SessionResumptionConfig("h"))


def test_client_content_frame_is_valid() -> None:
    frame = protocol.client_content_frame(
        [
            Content(
                role="user",
                parts=[
                    Part(text="look"),
                    Part(inline_data=GenerativeContentBlob("image/jpeg", JPEG)),
                ],
            )
        ],
        turn_complete=True,
    )
    content = validate(frame).client_content
    assert content is not None and content.turn_complete is True
    parts = content.turns[0].parts  # type: ignore[index]
    assert parts is not None and parts[0].text == "look"
    assert parts[1].inline_data is not None and parts[1].inline_data.data == JPEG


def test_realtime_frames_are_valid() -> None:
    audio = validate(
        protocol.realtime_audio_frame(GenerativeContentBlob("audio/pcm;rate=16000", PCM))
    )
    assert audio.realtime_input is not None and audio.realtime_input.audio is not None
    assert audio.realtime_input.audio.data == PCM
    assert audio.realtime_input.audio.mime_type == "audio/pcm;rate=16000"
    video = validate(protocol.realtime_video_frame(GenerativeContentBlob("image/jpeg", JPEG)))
    assert video.realtime_input is not None and video.realtime_input.video is not None
    assert video.realtime_input.video.data == JPEG
    text = validate(protocol.realtime_text_frame("hello"))
    assert text.realtime_input is not None and text.realtime_input.text == "hello"
    start = validate(protocol.activity_start_frame()).realtime_input
    assert start is not None and start.activity_start is not None
    end = validate(protocol.activity_end_frame()).realtime_input
    assert end is not None and end.activity_end is not None
    stream_end = validate(protocol.audio_stream_end_frame()).realtime_input
    assert stream_end is not None and stream_end.audio_stream_end is True
    chunk = validate(protocol.media_chunk_frame(GenerativeContentBlob("audio/pcm", PCM)))
    assert chunk.realtime_input is not None
    assert chunk.realtime_input.media_chunks is not None
    assert chunk.realtime_input.media_chunks[0].data == PCM


def test_tool_response_frame_is_valid() -> None:
    frame = protocol.tool_response_frame(
        [
            FunctionResponse(id="c1", name="set_lamp", response={"result": "on"}),
            FunctionResponse(
                id="c2",
                name="slow",
                response={"result": 1},
                will_continue=False,
                scheduling="WHEN_IDLE",
            ),
        ]
    )
    response = validate(frame).tool_response
    assert response is not None and response.function_responses is not None
    first, second = response.function_responses
    assert (first.id, first.name, first.response) == ("c1", "set_lamp", {"result": "on"})
    assert second.scheduling == genai.FunctionResponseScheduling.WHEN_IDLE


def dump(message: genai.LiveServerMessage) -> str:
    return message.model_dump_json(by_alias=True, exclude_none=True)


def test_server_content_built_by_google_genai_parses() -> None:
    message = genai.LiveServerMessage(
        server_content=genai.LiveServerContent(
            model_turn=genai.Content(
                role="model",
                parts=[
                    genai.Part(text="Hello"),
                    genai.Part(inline_data=genai.Blob(data=PCM, mime_type="audio/pcm;rate=24000")),
                ],
            ),
            turn_complete=True,
            interrupted=False,
            generation_complete=True,
            input_transcription=genai.Transcription(text="hi", finished=True),
            output_transcription=genai.Transcription(text="Hello"),
            waiting_for_input=True,
        ),
        usage_metadata=genai.UsageMetadata(
            prompt_token_count=11, response_token_count=7, total_token_count=18
        ),
    )
    frame = protocol.parse_server_frame(dump(message))
    assert not frame.problems and not frame.unknown
    content, usage = frame.messages
    assert isinstance(content, LiveServerContent)
    assert content.text == "Hello"
    assert content.audio_chunks()[0].as_bytes() == PCM  # google-genai writes URL-safe base64
    assert content.turn_complete and content.generation_complete and content.waiting_for_input
    assert content.input_transcription is not None and content.input_transcription.finished
    assert content.output_transcription is not None
    assert content.output_transcription.text == "Hello"
    assert isinstance(usage, LiveUsageMetadata)
    assert (usage.prompt_token_count, usage.response_token_count, usage.total_token_count) == (
        11,
        7,
        18,
    )


def test_tool_messages_built_by_google_genai_parse() -> None:
    call = genai.LiveServerMessage(
        tool_call=genai.LiveServerToolCall(
            function_calls=[genai.FunctionCall(id="c1", name="set_lamp", args={"on": True})]
        )
    )
    [parsed] = protocol.parse_server_frame(dump(call)).messages
    assert isinstance(parsed, LiveServerToolCall)
    assert (parsed.function_calls[0].id, parsed.function_calls[0].args) == ("c1", {"on": True})
    cancel = genai.LiveServerMessage(
        tool_call_cancellation=genai.LiveServerToolCallCancellation(ids=["c1"])
    )
    assert protocol.parse_server_frame(dump(cancel)).messages == [
        LiveServerToolCallCancellation(function_ids=["c1"])
    ]


def test_session_messages_built_by_google_genai_parse() -> None:
    go_away = genai.LiveServerMessage(go_away=genai.LiveServerGoAway(time_left="9.5s"))
    assert protocol.parse_server_frame(dump(go_away)).messages == [LiveServerGoingAwayNotice(9.5)]
    update = genai.LiveServerMessage(
        session_resumption_update=genai.LiveServerSessionResumptionUpdate(
            new_handle="h2", resumable=True, last_consumed_client_message_index=7
        )
    )
    assert protocol.parse_server_frame(dump(update)).messages == [
        LiveSessionResumptionUpdate("h2", True, 7)
    ]
    setup = genai.LiveServerMessage(setup_complete=genai.LiveServerSetupComplete(session_id="s"))
    [complete] = protocol.parse_server_frame(dump(setup)).messages
    assert complete.type == "setupComplete" and complete.session_id == "s"  # type: ignore[union-attr]
