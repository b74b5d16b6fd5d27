"""Backends (URLs, auth headers, model paths) and the setup message, without a socket."""

from __future__ import annotations

import json

import pytest

from agent.live import protocol
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.model import (
    FirebaseGoogleAIBackend,
    FirebaseVertexAIBackend,
    GeminiDeveloperBackend,
    LiveGenerativeModel,
    VertexAIBackend,
    format_system_instruction,
)
from agent.live.types import (
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    Content,
    ContextWindowCompression,
    FunctionDeclaration,
    LiveGenerationConfig,
    Part,
    RealtimeInputConfig,
    SessionResumptionConfig,
    SpeechConfig,
    Tool,
)


def test_firebase_google_ai_backend() -> None:
    backend = FirebaseGoogleAIBackend(
        api_key="KEY",
        project_id="my-proj",
        app_id="1:2:web:3",
        app_check_token="AC",
        auth_token="ID",
    )
    assert backend.url() == (
        "wss://firebasevertexai.googleapis.com/ws/"
        "google.firebase.vertexai.v1beta.GenerativeService/BidiGenerateContent"
    )
    headers = backend.headers()
    assert headers["x-goog-api-key"] == "KEY"
    assert headers["X-Firebase-AppCheck"] == "AC"
    assert headers["Authorization"] == "Firebase ID"
    assert headers["X-Firebase-AppId"] == "1:2:web:3"
    assert backend.model_path("gemini-x") == "projects/my-proj/models/gemini-x"
    # The JS SDK turns "models/x" into "models/models/x"; this client does not.
    assert backend.model_path("models/gemini-x") == "projects/my-proj/models/gemini-x"


def test_firebase_vertex_backend() -> None:
    backend = FirebaseVertexAIBackend(api_key="KEY", project_id="p", location="europe-west4")
    assert backend.url().endswith(
        "/ws/google.firebase.vertexai.v1beta.LlmBidiService/BidiGenerateContent/locations/"
        "europe-west4"
    )
    assert backend.model_path("gemini-x") == (
        "projects/p/locations/europe-west4/publishers/google/models/gemini-x"
    )
    assert backend.model_path("models/gemini-x") == (
        "projects/p/locations/europe-west4/publishers/google/models/gemini-x"
    )
    assert "Authorization" not in backend.headers()


def test_gemini_developer_backend_with_key() -> None:
    backend = GeminiDeveloperBackend(api_key="KEY")
    assert backend.url() == (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    assert backend.headers()["x-goog-api-key"] == "KEY"
    assert backend.model_path("gemini-x") == "models/gemini-x"
    assert backend.model_path("models/gemini-x") == "models/gemini-x"


def test_gemini_developer_backend_with_ephemeral_token() -> None:
    backend = GeminiDeveloperBackend(api_key="auth_tokens/abc")
    assert backend.url().endswith(
        "google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
    )
    assert backend.headers()["Authorization"] == "Token auth_tokens/abc"


def test_vertex_backend_hosts_and_bearer() -> None:
    regional = VertexAIBackend(access_token="TOK", project_id="p", quota_project="q")
    assert regional.url() == (
        "wss://us-central1-aiplatform.googleapis.com/ws/"
        "google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    )
    assert regional.headers()["Authorization"] == "Bearer TOK"
    assert regional.headers()["x-goog-user-project"] == "q"
    glob = VertexAIBackend(access_token=lambda: "fresh", project_id="p", location="global")
    assert glob.url().startswith("wss://aiplatform.googleapis.com/ws/")
    assert glob.headers()["Authorization"] == "Bearer fresh"


def test_endpoint_override_keeps_the_path() -> None:
    backend = GeminiDeveloperBackend(api_key="k", endpoint="ws://127.0.0.1:8765/")
    assert backend.url() == (
        "ws://127.0.0.1:8765/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )


@pytest.mark.parametrize(
    "backend",
    [
        FirebaseGoogleAIBackend(api_key="", project_id="p"),
        GeminiDeveloperBackend(api_key=""),
        VertexAIBackend(access_token="", project_id="p"),
    ],
)
def test_missing_credentials_are_a_clear_error(backend: object) -> None:
    with pytest.raises(LiveSessionError) as info:
        backend.headers()  # type: ignore[attr-defined]
    assert info.value.code == LiveErrorCode.NO_API_KEY


def test_no_model_is_an_error() -> None:
    with pytest.raises(LiveSessionError) as info:
        LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k"), model="")
    assert info.value.code == LiveErrorCode.NO_MODEL


def test_setup_has_generation_config_even_when_empty() -> None:
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k"), model="m")
    assert model.setup_message() == {"model": "models/m", "generationConfig": {}}


def test_setup_hoists_transcription_and_compression() -> None:
    model = LiveGenerativeModel(
        backend=FirebaseGoogleAIBackend(api_key="k", project_id="my-project"),
        model="my-model",
        generation_config=LiveGenerationConfig(
            temperature=0.8,
            input_audio_transcription=AudioTranscriptionConfig(),
            output_audio_transcription=AudioTranscriptionConfig(),
            context_window_compression=ContextWindowCompression(trigger_tokens=25600),
        ),
    )
    setup = model.setup_message()
    assert setup["generationConfig"] == {"temperature": 0.8}
    assert setup["inputAudioTranscription"] == {}
    assert setup["outputAudioTranscription"] == {}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}, "triggerTokens": 25600}
    assert "my-model" in setup["model"]


def test_setup_with_every_option() -> None:
    model = LiveGenerativeModel(
        backend=GeminiDeveloperBackend(api_key="k"),
        model="gemini-live-2.5-flash-preview",
        generation_config=LiveGenerationConfig(
            response_modalities=["AUDIO"],
            speech_config=SpeechConfig(voice_name="Puck", language_code="en-US"),
            media_resolution="MEDIA_RESOLUTION_LOW",
            enable_affective_dialog=True,
            context_window_compression=ContextWindowCompression(25600, 12800),
        ),
        tools=[
            Tool(
                function_declarations=[
                    FunctionDeclaration(
                        name="set_lamp",
                        description="Switch the lamp",
                        parameters={"type": "object", "properties": {"on": {"type": "boolean"}}},
                    )
                ]
            ),
            {"googleSearch": {}},
        ],
        tool_config={"functionCallingConfig": {"mode": "AUTO"}},
        system_instruction="Be brief.",
        realtime_input_config=RealtimeInputConfig(
            automatic_activity_detection=AutomaticActivityDetection(
                disabled=False, silence_duration_ms=500
            ),
            activity_handling="START_OF_ACTIVITY_INTERRUPTS",
        ),
        proactivity={"proactiveAudio": True},
    )
    setup = model.setup_message(SessionResumptionConfig(handle="h"))
    assert setup == {
        "model": "models/gemini-live-2.5-flash-preview",
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                "languageCode": "en-US",
            },
            "mediaResolution": "MEDIA_RESOLUTION_LOW",
            "enableAffectiveDialog": True,
        },
        "contextWindowCompression": {
            "slidingWindow": {"targetTokens": 12800},
            "triggerTokens": 25600,
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "set_lamp",
                        "description": "Switch the lamp",
                        "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}},
                    }
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
        "realtimeInputConfig": {
            "automaticActivityDetection": {"disabled": False, "silenceDurationMs": 500},
            "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
        },
        "proactivity": {"proactiveAudio": True},
        "sessionResumption": {"handle": "h"},
    }
    json.loads(protocol.setup_frame(setup))  # serialisable as is


def test_setup_is_never_mutated_by_resumption() -> None:
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key="k"), model="m")
    with_handle = model.setup_message(SessionResumptionConfig(handle="old"))
    without = model.setup_message()
    assert with_handle["sessionResumption"] == {"handle": "old"}
    assert "sessionResumption" not in without
    assert model.setup_message(SessionResumptionConfig())["sessionResumption"] == {}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("s", Content(role="system", parts=[Part(text="s")])),
        (Part(text="p"), Content(role="system", parts=[Part(text="p")])),
        (
            Content(role=None, parts=[Part(text="c")]),
            Content(role="system", parts=[Part(text="c")]),
        ),
        (
            Content(role="user", parts=[Part(text="u")]),
            Content(role="user", parts=[Part(text="u")]),
        ),
    ],
)
def test_system_instruction_forms(given: object, expected: object) -> None:
    assert format_system_instruction(given) == expected  # type: ignore[arg-type]
