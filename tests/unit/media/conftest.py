"""Known test signals for the DSP and simulated-device tests, as the ``sig`` fixture.

Tests reach the helpers through a fixture because pytest runs with ``--import-mode=importlib``,
where test modules cannot import each other or this file.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

Floats = npt.NDArray[np.float64]


class Signals:
    """Signal generators and measurements."""

    @staticmethod
    def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> Floats:
        """A sine of ``amplitude`` (peak, full scale = 1)."""
        t = np.arange(round(seconds * rate)) / rate
        return amplitude * np.sin(2 * math.pi * freq * t)

    @staticmethod
    def sweep(f0: float, f1: float, seconds: float, rate: int, amplitude: float = 0.5) -> Floats:
        """A linear sine sweep from ``f0`` to ``f1`` Hz."""
        t = np.arange(round(seconds * rate)) / rate
        phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
        return amplitude * np.sin(phase)

    @staticmethod
    def i2s_frames(mono: Floats, *, bits: int = 24, slot: int = 0, dc: float = 0.0) -> bytes:
        """``mono`` as an I2S mic delivers it: 2 ch S32_LE, ``bits`` of data left-justified in
        ``slot``, low bits zero, an optional DC offset (fraction of full scale)."""
        value = np.round((mono + dc) * 2 ** (bits - 1)).astype(np.int64)
        value = np.clip(value, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) << (32 - bits)
        frames = np.zeros((len(mono), 2), np.int32)
        frames[:, slot] = value.astype(np.int32)
        return frames.tobytes()

    @staticmethod
    def s16(signal: Floats, channels: int = 1) -> bytes:
        """Float signal to S16LE, repeated on every channel."""
        samples = np.clip(np.round(signal * 32767), -32768, 32767).astype("<i2")
        return np.repeat(samples, channels).tobytes()

    @staticmethod
    def pcm16(data: bytes) -> Floats:
        """S16LE bytes to floats in [-1, 1)."""
        return np.frombuffer(data, "<i2").astype(np.float64) / 32768.0

    @staticmethod
    def sine_fit(y: Floats, freq: float, rate: int) -> tuple[float, float]:
        """Least-squares fit of a sine at ``freq``: (amplitude, SNR in dB of the residual)."""
        t = np.arange(len(y)) / rate
        basis = np.vstack(
            [np.sin(2 * math.pi * freq * t), np.cos(2 * math.pi * freq * t), np.ones_like(t)]
        ).T
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        fitted = basis @ coef
        residual = y - fitted
        snr = 10 * math.log10(
            float(np.sum((fitted - coef[2]) ** 2)) / max(float(np.sum(residual**2)), 1e-30)
        )
        return float(math.hypot(coef[0], coef[1])), snr

    @staticmethod
    def rms_db(y: Floats) -> float:
        """RMS in dBFS (a full-scale sine is -3 dBFS)."""
        return 10 * math.log10(max(float(np.mean(y**2)), 1e-30))

    @staticmethod
    def write_wav(path: Path, data: bytes, rate: int, channels: int, width: int) -> Path:
        """Write raw frames as a standard PCM WAV."""
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(data)
        return path


@pytest.fixture
def sig() -> type[Signals]:
    """The signal helpers."""
    return Signals
