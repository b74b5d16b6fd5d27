"""From ``[audio]``, ``[listen]`` and ``[camera]`` to the devices: microphone, speaker, camera,
speech gate, wake-word detector.

Each device comes as the real one or its simulated stand-in (a WAV file, a tone, silence, a
null speaker, a test pattern), chosen by the config; the rest of the agent cannot tell them
apart.
"""

from __future__ import annotations

from typing import Protocol

from agent.config.model import AudioConfig, CameraConfig, ListenConfig, SpeechGateConfig
from agent.live.conversation import AudioSink, AudioSource, VoiceActivityDetector
from agent.media.audio import (
    AudioCapture,
    AudioPlayback,
    EnergySpeechDetector,
    MicroWakeWordDetector,
    NullSink,
    SilenceSource,
    ToneSource,
    WavFileSink,
    WavFileSource,
    apply_echo_policy,
    mic_capture_format,
)
from agent.media.camera import SOURCES, CameraStream, make_frame_source

__all__ = [
    "Microphone",
    "Speaker",
    "build_camera",
    "build_microphone",
    "build_speaker",
    "build_speech_gate",
    "build_wake_word",
    "with_echo_policy",
]


class Microphone(AudioSource, Protocol):
    """A source the daemon opens and closes: 16 kHz mono S16 chunks of ``chunk_ms``."""

    sample_rate: int
    chunk_ms: int

    @property
    def dropped(self) -> int:
        """Chunks dropped because the conversation did not keep up."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Speaker(AudioSink, Protocol):
    """A sink the daemon opens and closes, and whose playing the status LED shows."""

    last_audio_at: float | None

    @property
    def is_playing(self) -> bool: ...

    @property
    def dropped_ms(self) -> float:
        """Audio dropped because the playback buffer overflowed, in milliseconds."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_microphone(audio: AudioConfig) -> Microphone:
    """The microphone (or its stand-in), not yet started."""
    source = audio.input
    if source.kind == "wav":
        return WavFileSource(str(source.path), realtime=True, chunk_ms=audio.chunk_ms)
    if source.kind == "tone":
        return ToneSource(source.tone_hz, seconds=None, chunk_ms=audio.chunk_ms)
    if source.kind == "silence":
        return SilenceSource(seconds=None, chunk_ms=audio.chunk_ms)
    fmt = mic_capture_format(audio.mic, **audio.capture_overrides())
    return AudioCapture(source.device, fmt, chunk_ms=audio.chunk_ms)


def build_speaker(audio: AudioConfig) -> Speaker:
    """The speaker (or its stand-in), playing the model's 24 kHz speech in real time."""
    output = audio.output
    if output.kind == "wav":
        return WavFileSink(str(output.path), realtime=True)
    if output.kind == "null":
        return NullSink(realtime=True)
    return AudioPlayback(output.device, rate=output.rate or 24000)


def with_echo_policy(microphone: Microphone, speaker: Speaker, audio: AudioConfig) -> AudioSource:
    """What the conversation reads: the microphone, with the speaker's echo cancelled under
    ``aec`` (the default with a speaker device), muted while the speaker plays under
    ``half_duplex``, as it is under ``none``."""
    policy = audio.echo_policy
    if policy == "aec" and isinstance(speaker, AudioPlayback):
        from agent.media.audio.aec import EchoCancellingSource, EchoSettings  # its own import

        aec, gain = audio.aec, audio.aec.gain_control
        settings = EchoSettings(
            delay_ms=aec.delay_ms,
            noise_suppression=aec.noise_suppression,
            gain_control=gain.enabled,
            gain_db=gain.gain_db,
            max_gain_db=gain.max_gain_db,
        )
        return EchoCancellingSource(microphone, speaker.tap(), settings)
    if policy == "aec":  # a simulated speaker makes no echo (config refuses writing it so)
        policy = "half_duplex"
    return apply_echo_policy(microphone, speaker, policy, audio.tail_ms)


def build_speech_gate(gate: SpeechGateConfig) -> VoiceActivityDetector:
    """The local speech detector of ``[audio.vad_gate]``."""
    return EnergySpeechDetector(
        margin_db=gate.margin_db, min_dbfs=gate.min_dbfs, hangover_ms=gate.hangover_ms
    )


def build_wake_word(listen: ListenConfig) -> MicroWakeWordDetector:
    """The wake-word detector of ``[listen]`` (its models loaded)."""
    return MicroWakeWordDetector(listen.wake_words, refractory_s=listen.refractory_s,
                                 batch_ms=listen.wake_batch_ms)


def build_camera(camera: CameraConfig) -> CameraStream | None:
    """The paced JPEG stream of ``[camera]``, or None when the camera is off."""
    if not camera.enabled:
        return None
    options = {key: getattr(camera, key) for key in SOURCES[camera.source].config_keys}
    return CameraStream(
        make_frame_source(camera.source, **options),
        width=camera.width,
        height=camera.height,
        interval_s=camera.interval_s,
        quality=camera.quality,
        skip_unchanged=camera.skip_unchanged,
        change_threshold=camera.change_threshold,
        max_interval_s=camera.max_interval_s,
    )

