"""[live] and [reconnect] turned into the Live client's objects, down to the setup message."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.build.live import make_backend, make_model, reconnect_policy
from agent.config import load_config
from agent.emulator.pytest_plugin import emulator, emulator_config  # noqa: F401
from agent.emulator.server import Emulator
from agent.live.model import (
    FirebaseGoogleAIBackend,
    FirebaseVertexAIBackend,
    GeminiDeveloperBackend,
    VertexAIBackend,
)
from agent.live.types import ContextWindowCompression
from tests.unit.config.conftest import WriteConfig

REPO = Path(__file__).resolve().parents[3]
DECLARATION = {"name": "set_lamp", "description": "Lamp.",
               "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}}}


def test_the_example_config_makes_this_setup_message() -> None:
    config = load_config(REPO / "agent.example.toml")
    model = make_model(config, "key-for-test", function_declarations=lambda: [DECLARATION])
    setup = model.setup_message()
    assert setup["model"] == "models/gemini-live-2.5-flash-preview"
    assert setup["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                         "languageCode": "en-US"},
        "mediaResolution": "MEDIA_RESOLUTION_LOW",
    }
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    assert setup["realtimeInputConfig"] == {"automaticActivityDetection": {
        "endOfSpeechSensitivity": "END_SENSITIVITY_LOW", "silenceDurationMs": 800}}
    assert setup["tools"] == [{"functionDeclarations": [DECLARATION]}]
    assert setup["systemInstruction"]["parts"][0]["text"].startswith("You are the voice")
    assert model.options.timeout == 10.0


def test_turn_taking_settings(write_config: WriteConfig) -> None:
    config = load_config(write_config('''
        [live]
        temperature = 0.4
        input_transcription = false
        [live.vad]
        enabled = false
        start_sensitivity = "high"
        barge_in = false
    '''))
    setup = make_model(config, "k").setup_message()
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True,
                                       "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH"},
        "activityHandling": "NO_INTERRUPTION"}
    assert setup["generationConfig"]["temperature"] == 0.4
    assert "inputAudioTranscription" not in setup and "tools" not in setup


def test_reconnect_policy_and_compression(write_config: WriteConfig) -> None:
    config = load_config(write_config('''
        [reconnect]
        backoff_base_s = 1.0
        backoff_cap_s = 20.0
        replay_audio_s = 3.0
        [live.compression]
        trigger_tokens = 20000
        target_tokens = 10000
    '''))
    policy = reconnect_policy(config)
    assert (policy.backoff_base_s, policy.backoff_cap_s, policy.replay_audio_s) == (1.0, 20.0, 3.0)
    assert policy.compression == ContextWindowCompression(20000, 10000)
    off = load_config(write_config("[live.compression]\nenabled = false\n"))
    assert reconnect_policy(off).compression is None


@pytest.mark.parametrize(("toml", "kind"), [
    ('backend = "gemini"', GeminiDeveloperBackend),
    ('backend = "vertex"\nproject_id = "p"\nlocation = "europe-west4"', VertexAIBackend),
    ('backend = "firebase-google"\nproject_id = "p"\napp_id = "1:2:web:3"',
     FirebaseGoogleAIBackend),
    ('backend = "firebase-vertex"\nproject_id = "p"', FirebaseVertexAIBackend),
])
def test_each_backend(write_config: WriteConfig, toml: str, kind: type) -> None:
    live = load_config(write_config(f"[live]\n{toml}\n")).live
    backend = make_backend(live, "k")
    assert isinstance(backend, kind)
    assert "/p/" in backend.model_path("m") or kind is GeminiDeveloperBackend


def test_the_emulator_backend_needs_an_endpoint(write_config: WriteConfig) -> None:
    live = load_config(write_config('[live]\nbackend = "emulator"\n')).live
    with pytest.raises(ValueError, match="needs an endpoint"):
        make_backend(live, "k")
    assert make_backend(live, "k", endpoint="ws://127.0.0.1:9").endpoint == "ws://127.0.0.1:9"


async def test_a_model_from_the_config_connects_to_the_emulator(
        write_config: WriteConfig, emulator: Emulator) -> None:  # noqa: F811
    config = load_config(write_config(f'''
        [live]
        backend = "emulator"
        endpoint = "{emulator.url}"
        voice = "Kore"
    '''))
    session = await make_model(config, "k", function_declarations=lambda: [DECLARATION]).connect()
    try:
        assert not session.is_closed
    finally:
        await session.close()
    [received] = [r for r in emulator.recordings.connection(1).received if r.kind == "setup"]
    assert received.message["setup"]["tools"] == [{"functionDeclarations": [DECLARATION]}]
