"""Builders for the device side of the agent: microphone, speaker, speech gate, camera.

Each function turns one section of the config into the object that does the work, so the daemon
reads as wiring. The Live side is built by ``agent.config_live``.
"""

from __future__ import annotations

from typing import Any

from agent.config.model import AudioConfig, CameraConfig
from agent.live.conversation import AudioSink, AudioSource
from agent.media.audio import (
    AudioCapture,
    AudioPlayback,
    EnergySpeechDetector,
    NullSink,
    SilenceSource,
    ToneSource,
    WavFileSink,
    WavFileSource,
    apply_echo_policy,
)
from agent.media.camera import CameraStream, make_frame_source


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


def build_speech_gate(audio: AudioConfig) -> EnergySpeechDetector | None:
    gate = audio.vad_gate
    if not gate.enabled:
        return None
    return EnergySpeechDetector(
        margin_db=gate.margin_db, min_dbfs=gate.min_dbfs, hangover_ms=gate.hangover_ms
    )


def build_camera(camera: CameraConfig) -> CameraStream | None:
    if not camera.enabled:
        return None
    source = make_frame_source(camera.source, **camera.source_options())
    return CameraStream(source, **camera.stream_options())
