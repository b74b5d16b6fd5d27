"""Audio in and out: microphones, speakers, their simulated stand-ins, and the echo policy.

Sources yield 16 kHz mono S16LE chunks of ``chunk_ms`` from ``chunks()``; sinks take 24 kHz mono
S16LE with ``write()`` and drop everything queued with ``flush()``. Real devices
(:class:`AudioCapture`, :class:`AudioPlayback`) and simulated ones (:class:`WavFileSource`,
:class:`ToneSource`, :class:`SilenceSource`, :class:`WavFileSink`, :class:`NullSink`) are
interchangeable. A mic's native format is a :class:`CaptureFormat`, usually read from one of the
shipped profiles with :func:`load_mic_profile`. :func:`apply_echo_policy` keeps the model from
hearing itself (see :mod:`agent.media.audio.echo`); :class:`EnergySpeechDetector` tells speech
from background noise; :class:`MicroWakeWordDetector` listens for wake words.
"""

from agent.media.audio.capture import AudioCapture
from agent.media.audio.convert import CaptureFormat
from agent.media.audio.devices import AudioDeviceError, AudioDeviceInfo, list_audio_devices
from agent.media.audio.echo import HalfDuplexGate, apply_echo_policy
from agent.media.audio.mics import (
    MicProfileError,
    available_mic_profiles,
    load_mic_profile,
    mic_capture_format,
)
from agent.media.audio.playback import AudioPlayback
from agent.media.audio.sim import NullSink, SilenceSource, ToneSource, WavFileSink, WavFileSource
from agent.media.audio.speech import EnergySpeechDetector
from agent.media.audio.wakeword import (
    MicroWakeWordDetector,
    WakeDetection,
    WakeWordDetector,
    WakeWordError,
    bundled_wake_words,
    wake_chime,
    wake_word_problem,
)
from agent.media.audio.wavfile import WavFormatError

__all__ = [
    "AudioCapture",
    "AudioDeviceError",
    "AudioDeviceInfo",
    "AudioPlayback",
    "CaptureFormat",
    "EnergySpeechDetector",
    "HalfDuplexGate",
    "MicProfileError",
    "MicroWakeWordDetector",
    "NullSink",
    "SilenceSource",
    "ToneSource",
    "WakeDetection",
    "WakeWordDetector",
    "WakeWordError",
    "WavFileSink",
    "WavFileSource",
    "WavFormatError",
    "apply_echo_policy",
    "available_mic_profiles",
    "bundled_wake_words",
    "list_audio_devices",
    "load_mic_profile",
    "mic_capture_format",
    "wake_chime",
    "wake_word_problem",
]
