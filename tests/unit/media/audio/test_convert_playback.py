"""Playback conversion, voice activity detection and the speech gate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agent.media.audio.convert import PlaybackConverter, VoiceActivityDetector


def test_playback_24k_to_48k_stereo_keeps_the_tone(sig: Any) -> None:
    converter = PlaybackConverter(24000, 48000, 2)
    pcm = sig.s16(sig.sine(440, 1.0, 24000, 0.5))
    out = b"".join(converter.convert(pcm[i : i + 961]) for i in range(0, len(pcm), 961))
    out += converter.drain()
    frames = np.frombuffer(out, "<i2").reshape(-1, 2)
    assert len(frames) == 48000
    assert np.array_equal(frames[:, 0], frames[:, 1])
    amplitude, snr = sig.sine_fit(frames[2000:-2000, 0] / 32768.0, 440, 48000)
    assert amplitude == pytest.approx(0.5, rel=0.01)
    assert snr > 60


def test_playback_same_rate_mono_is_bit_exact() -> None:
    pcm = np.arange(-500, 500, dtype="<i2").tobytes()
    converter = PlaybackConverter(24000, 24000, 1)
    assert converter.convert(pcm[:7]) + converter.convert(pcm[7:]) == pcm


def test_playback_reset_forgets_the_previous_tail(sig: Any) -> None:
    converter = PlaybackConverter(24000, 48000, 1)
    converter.convert(sig.s16(sig.sine(440, 0.1, 24000, 0.9)))
    converter.reset()
    silence = converter.convert(bytes(4800)) + converter.drain()
    assert not np.any(np.frombuffer(silence, "<i2"))


def chunks_of(signal: Any, sig: Any) -> list[bytes]:
    data = sig.s16(signal)
    return [data[i : i + 1280] for i in range(0, len(data), 1280)]


def test_vad_detects_speech_over_quiet_noise_and_hangs_over(sig: Any) -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(16000 * 2) * 0.001  # -60 dBFS
    burst = sig.sine(300, 1.0, 16000, 0.1) + rng.standard_normal(16000) * 0.001
    vad = VoiceActivityDetector(hangover_ms=200)
    states = [vad.is_speech(c) for c in chunks_of(np.concatenate([noise, burst, noise]), sig)]
    assert not any(states[:50])  # 2 s of noise
    assert all(states[52:75])  # the burst, after a 2-chunk onset
    assert states[75] and states[79]  # hangover: 200 ms after the burst ends
    assert not any(states[81:])


def test_vad_learns_a_steady_loud_noise_floor(sig: Any) -> None:
    fan = np.random.default_rng(1).standard_normal(16000 * 20) * 0.05  # -26 dBFS, steady
    vad = VoiceActivityDetector()
    states = [vad.is_speech(c) for c in chunks_of(fan, sig)]
    assert not any(states[-100:])  # a steady fan stops counting as speech
    assert vad.noise_floor_dbfs > -35


def test_vad_ignores_a_single_click(sig: Any) -> None:
    signal = np.zeros(16000)
    signal[8000:8100] = 0.5
    vad = VoiceActivityDetector()
    assert not any(vad.is_speech(c) for c in chunks_of(signal, sig))
