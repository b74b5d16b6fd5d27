"""Builders: the parts of the agent, made from a loaded ``AgentConfig``.

Each function turns one section of the config into the object that does the work, so the daemon
reads as wiring and each mapping from setting to behaviour is in one place.
"""

from __future__ import annotations

from typing import Any

from agent.config_model import AgentConfig, AudioConfig, CameraConfig, LiveConfig, ReconnectConfig
from agent.live.conversation import AudioSink, AudioSource
from agent.live.model import (
    Backend,
    ConnectOptions,
    FirebaseGoogleAIBackend,
    FirebaseVertexAIBackend,
    GeminiDeveloperBackend,
    LiveGenerativeModel,
    VertexAIBackend,
)
from agent.live.resilient import ReconnectPolicy
from agent.live.types import (
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    ContextWindowCompression,
    FunctionDeclaration,
    LiveGenerationConfig,
    RealtimeInputConfig,
    SpeechConfig,
    Tool,
)
from agent.media.audio import AudioCapture, AudioPlayback, apply_echo_policy
from agent.media.audio_sim import NullSink, SilenceSource, ToneSource, WavFileSink, WavFileSource
from agent.media.camera import CameraStream, make_frame_source
from agent.media.dsp import VoiceActivityDetector

EMULATOR_KEY = "emulator"
"""What the ``emulator`` backend sends as its key: the emulator accepts any."""


def build_backend(live: LiveConfig, api_key: str | None, endpoint: str | None = None) -> Backend:
    """The backend named by ``live.backend``; ``endpoint`` overrides ``live.endpoint``."""
    where = endpoint or live.endpoint
    key = api_key or ""
    if live.backend == "emulator":
        return GeminiDeveloperBackend(api_key=key or EMULATOR_KEY, endpoint=where)
    if live.backend == "gemini":
        return GeminiDeveloperBackend(api_key=key, endpoint=where)
    if live.backend == "vertex":
        return VertexAIBackend(
            access_token=key,
            project_id=live.project_id or "",
            location=live.location,
            endpoint=where,
        )
    if live.backend == "firebase-google":
        return FirebaseGoogleAIBackend(
            api_key=key, project_id=live.project_id or "", app_id=live.app_id, endpoint=where
        )
    return FirebaseVertexAIBackend(
        api_key=key,
        project_id=live.project_id or "",
        location=live.location,
        app_id=live.app_id,
        endpoint=where,
    )


_SENSITIVITY = {"high": "HIGH", "low": "LOW"}


def build_model(
    config: AgentConfig,
    api_key: str | None,
    declarations: list[dict[str, Any]],
    *,
    endpoint: str | None = None,
) -> LiveGenerativeModel:
    """The Live model: backend, voice, transcription, compression, activity detection, tools."""
    live = config.live
    speech = None
    if live.voice or live.language:
        speech = SpeechConfig(voice_name=live.voice, language_code=live.language)
    compression = None
    if live.compression.enabled:
        compression = ContextWindowCompression(
            trigger_tokens=live.compression.trigger_tokens,
            target_tokens=live.compression.target_tokens,
        )
    generation = LiveGenerationConfig(
        response_modalities=list(live.response_modalities),
        speech_config=speech,
        temperature=live.temperature,
        media_resolution=(
            f"MEDIA_RESOLUTION_{live.media_resolution.upper()}"  # type: ignore[arg-type]
            if live.media_resolution
            else None
        ),
        input_audio_transcription=AudioTranscriptionConfig() if live.input_transcription else None,
        output_audio_transcription=(
            AudioTranscriptionConfig() if live.output_transcription else None
        ),
        context_window_compression=compression,
    )
    vad = live.vad
    automatic = vad.enabled and not config.audio.push_to_talk
    start = _SENSITIVITY.get(vad.start_sensitivity or "")
    end = _SENSITIVITY.get(vad.end_sensitivity or "")
    realtime = RealtimeInputConfig(
        automatic_activity_detection=AutomaticActivityDetection(
            disabled=not automatic,
            start_of_speech_sensitivity=f"START_SENSITIVITY_{start}" if start else None,  # type: ignore[arg-type]
            end_of_speech_sensitivity=f"END_SENSITIVITY_{end}" if end else None,  # type: ignore[arg-type]
            prefix_padding_ms=vad.prefix_padding_ms,
            silence_duration_ms=vad.silence_duration_ms,
        ),
        activity_handling="START_OF_ACTIVITY_INTERRUPTS" if vad.barge_in else "NO_INTERRUPTION",
    )
    tools = None
    if declarations:
        tools = [Tool(function_declarations=[FunctionDeclaration(**d) for d in declarations])]
    return LiveGenerativeModel(
        backend=build_backend(live, api_key, endpoint),
        model=live.model,
        generation_config=generation,
        tools=tools,
        system_instruction=live.system_instruction,
        realtime_input_config=realtime,
        options=ConnectOptions(timeout=live.connect_timeout_s),
    )


def build_policy(reconnect: ReconnectConfig, live: LiveConfig) -> ReconnectPolicy:
    return ReconnectPolicy(
        backoff_base_s=reconnect.backoff_base_s,
        backoff_cap_s=reconnect.backoff_cap_s,
        quota_backoff_s=reconnect.quota_backoff_s,
        stable_after_s=reconnect.stable_after_s,
        replay_audio_s=reconnect.replay_audio_s,
        compression=ContextWindowCompression() if live.compression.enabled else None,
    )


def build_audio_source(audio: AudioConfig) -> Any:
    """The microphone (or its stand-in): 16 kHz mono S16 chunks of ``audio.chunk_ms``."""
    source = audio.input
    if source.kind == "wav":
        return WavFileSource(str(source.path), realtime=True, chunk_ms=audio.chunk_ms)
    if source.kind == "tone":
        return ToneSource(source.tone_hz, seconds=None, chunk_ms=audio.chunk_ms)
    if source.kind == "silence":
        return SilenceSource(seconds=None, chunk_ms=audio.chunk_ms)
    return AudioCapture(source.device, audio.capture_format(), chunk_ms=audio.chunk_ms)


def build_audio_sink(audio: AudioConfig) -> Any:
    """The speaker (or its stand-in), playing the model's 24 kHz speech in real time."""
    output = audio.output
    if output.kind == "wav":
        return WavFileSink(str(output.path), realtime=True)
    if output.kind == "null":
        return NullSink(realtime=True)
    return AudioPlayback(output.device, rate=output.rate or 24000)


def with_echo_policy(source: AudioSource, sink: AudioSink, audio: AudioConfig) -> Any:
    return apply_echo_policy(source, sink, audio.echo, audio.tail_ms)  # type: ignore[arg-type]


def build_speech_gate(audio: AudioConfig) -> VoiceActivityDetector | None:
    gate = audio.vad_gate
    if not gate.enabled:
        return None
    return VoiceActivityDetector(
        margin_db=gate.margin_db, min_dbfs=gate.min_dbfs, hangover_ms=gate.hangover_ms
    )


def build_camera(camera: CameraConfig) -> CameraStream | None:
    if not camera.enabled:
        return None
    source = make_frame_source(camera.source, **camera.source_options())
    return CameraStream(source, **camera.stream_options())
