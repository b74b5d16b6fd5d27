"""From ``[live]`` and ``[reconnect]`` to the Live client's objects.

The config file says things in its own words (``media_resolution = "low"``,
``vad.end_sensitivity = "low"``); this module turns them into the client's types::

    model = make_model(config, api_key, function_declarations=registry.declarations)
    session = ResilientSession(model, reconnect_policy(config))

With ``listen.mode = "push_to_talk"`` the button marks the user's turns, so the service's own
activity detection is switched off here, whatever ``[live.vad]`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.config.model import AgentConfig, LiveConfig
from agent.live.model import (
    Backend,
    ConnectOptions,
    FirebaseGoogleAIBackend,
    FirebaseVertexAIBackend,
    GeminiDeveloperBackend,
    LiveGenerativeModel,
    Secret,
    VertexAIBackend,
)
from agent.live.resilient import ReconnectPolicy
from agent.live.types import (
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    ContextWindowCompression,
    EndSensitivity,
    LiveGenerationConfig,
    MediaResolution,
    RealtimeInputConfig,
    SpeechConfig,
    StartSensitivity,
)

__all__ = [
    "compression",
    "connect_options",
    "generation_config",
    "make_backend",
    "make_model",
    "realtime_input_config",
    "reconnect_policy",
]


_RESOLUTIONS: dict[str, MediaResolution] = {
    "low": "MEDIA_RESOLUTION_LOW", "medium": "MEDIA_RESOLUTION_MEDIUM",
    "high": "MEDIA_RESOLUTION_HIGH"}
_START: dict[str, StartSensitivity] = {
    "high": "START_SENSITIVITY_HIGH", "low": "START_SENSITIVITY_LOW"}
_END: dict[str, EndSensitivity] = {"high": "END_SENSITIVITY_HIGH", "low": "END_SENSITIVITY_LOW"}


def generation_config(live: LiveConfig) -> LiveGenerationConfig:
    """Voice, language, modality, temperature, media resolution and transcription."""
    speech = None
    if live.voice is not None or live.language is not None:
        speech = SpeechConfig(voice_name=live.voice, language_code=live.language)
    return LiveGenerationConfig(
        response_modalities=list(live.response_modalities),
        speech_config=speech,
        media_resolution=None if live.media_resolution is None
        else _RESOLUTIONS[live.media_resolution],
        temperature=live.temperature,
        input_audio_transcription=AudioTranscriptionConfig() if live.input_transcription else None,
        output_audio_transcription=AudioTranscriptionConfig()
        if live.output_transcription
        else None,
    )


def realtime_input_config(config: AgentConfig) -> RealtimeInputConfig:
    """The service's activity detection (off with push-to-talk), and whether speech
    interrupts the model."""
    vad = config.live.vad
    detection = AutomaticActivityDetection(
        disabled=None if vad.enabled and config.listen.mode != "push_to_talk" else True,
        start_of_speech_sensitivity=None if vad.start_sensitivity is None
        else _START[vad.start_sensitivity],
        end_of_speech_sensitivity=None if vad.end_sensitivity is None
        else _END[vad.end_sensitivity],
        prefix_padding_ms=vad.prefix_padding_ms,
        silence_duration_ms=vad.silence_duration_ms,
    )
    return RealtimeInputConfig(
        automatic_activity_detection=detection,
        activity_handling=None if vad.barge_in else "NO_INTERRUPTION",
    )


def compression(live: LiveConfig) -> ContextWindowCompression | None:
    """The sliding window, or None when ``live.compression.enabled = false``."""
    c = live.compression
    if not c.enabled:
        return None
    return ContextWindowCompression(trigger_tokens=c.trigger_tokens, target_tokens=c.target_tokens)


def connect_options(live: LiveConfig) -> ConnectOptions:
    """Transport settings: the connect timeout."""
    return ConnectOptions(timeout=live.connect_timeout_s)


def make_backend(live: LiveConfig, api_key: Secret, *, endpoint: str | None = None,
                 app_check: Secret | None = None, auth: Secret | None = None) -> Backend:
    """The backend for ``live.backend``, authenticated with ``api_key`` (for ``vertex``, an
    access token; for ``gemini``, possibly an ephemeral token), and for the Firebase backends
    with the ``app_check`` and ``auth`` tokens. ``endpoint`` overrides ``live.endpoint`` (the
    daemon passes the address of an in-process emulator).

    Raises:
        ValueError: ``emulator`` with no endpoint from either place.
    """
    url = endpoint or live.endpoint
    project = live.project_id or ""
    backend: Backend
    if live.backend == "gemini":
        backend = GeminiDeveloperBackend(api_key=api_key, endpoint=url)
    elif live.backend == "emulator":
        if url is None:
            raise ValueError(
                "the emulator backend needs an endpoint (live.endpoint, or the "
                "address of an emulator started in-process)"
            )
        backend = GeminiDeveloperBackend(api_key=api_key, endpoint=url)
    elif live.backend == "vertex":
        backend = VertexAIBackend(
            access_token=api_key, project_id=project, location=live.location, endpoint=url
        )
    elif live.backend == "firebase-google":
        backend = FirebaseGoogleAIBackend(
            api_key=api_key, project_id=project, app_id=live.app_id, endpoint=url,
            app_check_token=app_check, auth_token=auth,
        )
    else:
        backend = FirebaseVertexAIBackend(
            api_key=api_key,
            project_id=project,
            location=live.location,
            app_id=live.app_id,
            endpoint=url,
            app_check_token=app_check,
            auth_token=auth,
        )
    return backend


def make_model(
    config: AgentConfig,
    api_key: Secret,
    *,
    function_declarations: Callable[[], Sequence[Mapping[str, Any]]] = tuple,
    endpoint: str | None = None,
    app_check: Secret | None = None,
    auth: Secret | None = None,
) -> LiveGenerativeModel:
    """The model to connect to, with every ``[live]`` setting and the tools' declarations
    (``ToolRegistry.declarations``, asked at every connection, so that tools an MCP server
    adds are declared at the next setup). Compression is left to `reconnect_policy`."""
    live = config.live

    def tools() -> list[dict[str, Any]]:
        declared = function_declarations()
        return [{"functionDeclarations": [dict(d) for d in declared]}] if declared else []

    return LiveGenerativeModel(
        backend=make_backend(live, api_key, endpoint=endpoint, app_check=app_check, auth=auth),
        model=live.model,
        generation_config=generation_config(live),
        tools=tools,
        system_instruction=live.system_instruction.strip() if live.system_instruction else None,
        realtime_input_config=realtime_input_config(config),
        options=connect_options(live),
    )


def reconnect_policy(config: AgentConfig) -> ReconnectPolicy:
    """Backoff, replay and compression for ``ResilientSession``."""
    r = config.reconnect
    return ReconnectPolicy(
        backoff_base_s=r.backoff_base_s,
        backoff_cap_s=r.backoff_cap_s,
        quota_backoff_s=r.quota_backoff_s,
        stable_after_s=r.stable_after_s,
        replay_audio_s=r.replay_audio_s,
        compression=compression(config.live),
    )
