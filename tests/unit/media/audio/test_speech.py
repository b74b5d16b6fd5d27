"""The energy speech detector: speech over noise, a learned noise floor, no false clicks."""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.media.audio import EnergySpeechDetector


def chunks_of(signal: Any, sig: Any) -> list[bytes]:
    data = sig.s16(signal)
    return [data[i : i + 1280] for i in range(0, len(data), 1280)]


def test_vad_detects_speech_over_quiet_noise_and_hangs_over(sig: Any) -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(16000 * 2) * 0.001  # -60 dBFS
    burst = sig.sine(300, 1.0, 16000, 0.1) + rng.standard_normal(16000) * 0.001
    vad = EnergySpeechDetector(hangover_ms=200)
    states = [vad.is_speech(c) for c in chunks_of(np.concatenate([noise, burst, noise]), sig)]
    assert not any(states[:50])  # 2 s of noise
    assert all(states[52:75])  # the burst, after a 2-chunk onset
    assert states[75] and states[79]  # hangover: 200 ms after the burst ends
    assert not any(states[81:])


def test_vad_learns_a_steady_loud_noise_floor(sig: Any) -> None:
    fan = np.random.default_rng(1).standard_normal(16000 * 20) * 0.05  # -26 dBFS, steady
    vad = EnergySpeechDetector()
    states = [vad.is_speech(c) for c in chunks_of(fan, sig)]
    assert not any(states[-100:])  # a steady fan stops counting as speech
    assert vad.noise_floor_dbfs > -35


def test_vad_ignores_a_single_click(sig: Any) -> None:
    signal = np.zeros(16000)
    signal[8000:8100] = 0.5
    vad = EnergySpeechDetector()
    assert not any(vad.is_speech(c) for c in chunks_of(signal, sig))
