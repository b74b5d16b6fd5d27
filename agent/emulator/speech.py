"""Energy-based speech detection on incoming PCM and a synthetic voice for replies.

Both work on whole numpy blocks: the detector looks at 10 ms windows, a few per frame, and
never loops over samples in Python; the voice is made one reply chunk at a time, so a long
reply costs neither memory nor a long stretch of the event loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

_WINDOW_S = 0.010
_FULL_SCALE_SQ = 32768.0 * 32768.0
_HARMONICS = range(1, 7)


def _harmonic_peak() -> float:
    """The peak of the voice's harmonic sum over a whole cycle (it scales every chunk alike)."""
    phase = np.linspace(0.0, np.pi, 20_001)
    return float(np.max(sum(np.sin(k * phase) / k for k in _HARMONICS)))


_PEAK = _harmonic_peak()


class VadEvent(Enum):
    """A change detected in the incoming audio."""

    START = "start"
    END = "end"


@dataclass(frozen=True, slots=True)
class VadSettings:
    """Thresholds in dBFS (RMS over 10 ms) and durations in ms of audio (not wall time)."""

    start_dbfs: float = -40.0
    end_dbfs: float = -45.0
    start_ms: int = 30
    silence_ms: int = 600

    @classmethod
    def for_setup(
        cls,
        threshold_dbfs: float,
        start_ms: int,
        silence_ms: int,
        start_sensitivity: str,
        end_sensitivity: str,
        prefix_padding_ms: int | None,
        silence_duration_ms: int | None,
    ) -> VadSettings:
        """Apply the client's ``automaticActivityDetection`` to the emulator's defaults.

        HIGH start sensitivity detects quieter speech (threshold 8 dB lower), LOW needs louder
        speech; HIGH end sensitivity ends speech sooner (no hysteresis), LOW later (10 dB).
        """
        start = threshold_dbfs + {"START_SENSITIVITY_HIGH": -8.0, "START_SENSITIVITY_LOW": 8.0}.get(
            start_sensitivity, 0.0
        )
        gap = {"END_SENSITIVITY_HIGH": 0.0, "END_SENSITIVITY_LOW": 10.0}.get(end_sensitivity, 5.0)
        return cls(
            start_dbfs=start,
            end_dbfs=start - gap,
            start_ms=max(10, prefix_padding_ms if prefix_padding_ms is not None else start_ms),
            silence_ms=max(
                10, silence_duration_ms if silence_duration_ms is not None else silence_ms
            ),
        )


class EnergyVad:
    """Streaming start/end-of-speech detector over 16-bit mono PCM."""

    def __init__(self, settings: VadSettings) -> None:
        self.settings = settings
        self.in_speech = False
        self.rate = 0
        self._window = 0
        self._carry: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._run = 0  # consecutive windows on the far side of the current state
        self.speech_samples = 0  # length of the current (or last) utterance

    def _set_rate(self, rate: int) -> None:
        self.rate, self._window = rate, max(1, round(rate * _WINDOW_S))
        self._carry = np.zeros(0, dtype=np.float32)

    def feed(self, samples: npt.NDArray[np.int16], rate: int) -> list[VadEvent]:
        """Consume one chunk; return the events it completes, in order."""
        if rate != self.rate:
            self._set_rate(rate)
        x = samples.astype(np.float32)
        if self._carry.size:
            x = np.concatenate((self._carry, x))
        n = x.size // self._window
        self._carry = x[n * self._window :]
        if n == 0:
            return []
        blocks = x[: n * self._window].reshape(n, self._window)
        power = np.einsum("ij,ij->i", blocks, blocks) / (self._window * _FULL_SCALE_SQ)
        level = 10.0 * np.log10(power + 1e-12)
        s = self.settings
        need_start = max(1, round(s.start_ms / 10))
        need_end = max(1, round(s.silence_ms / 10))
        events: list[VadEvent] = []
        for db in level.tolist():
            if self.in_speech:
                self.speech_samples += self._window
                self._run = self._run + 1 if db < s.end_dbfs else 0
                if self._run >= need_end:
                    self.in_speech, self._run = False, 0
                    events.append(VadEvent.END)
            else:
                self._run = self._run + 1 if db >= s.start_dbfs else 0
                if self._run >= need_start:
                    self.in_speech, self.speech_samples = True, self._run * self._window
                    self._run = 0
                    events.append(VadEvent.START)
        return events

    def force_end(self) -> bool:
        """End the utterance now (``audioStreamEnd``); True if one was in progress."""
        was = self.in_speech
        self.in_speech, self._run = False, 0
        return was


def pitch_for_voice(voice_name: str | None, default_hz: float | None) -> float:
    """A deterministic fundamental per prebuilt voice name (100-180 Hz)."""
    if default_hz is not None:
        return default_hz
    return 100.0 + zlib.crc32((voice_name or "Puck").encode()) % 80


def voice_chunks(
    samples: int, rate: int, pitch_hz: float, amplitude: float, chunk: int
) -> Iterator[bytes]:
    """A voice-like signal of ``samples`` samples, ``chunk`` samples at a time: a harmonic tone
    with gliding pitch and a syllable-rate envelope, faded in and out."""
    phase0 = 0.0
    end_t = (samples - 1) / rate
    for start in range(0, samples, max(1, chunk)):
        t = (start + np.arange(min(chunk, samples - start), dtype=np.float64)) / rate
        f0 = pitch_hz * (1.0 + 0.06 * np.sin(2 * np.pi * 0.7 * t))
        phase = phase0 + 2 * np.pi * np.cumsum(f0) / rate
        phase0 = float(phase[-1])
        tone = sum(np.sin(k * phase) / k for k in _HARMONICS)
        syllables = np.clip(np.sin(2 * np.pi * 4.0 * t) * 1.4, 0.0, 1.0) ** 0.5
        fade = np.minimum(1.0, np.minimum(t, end_t - t) / 0.01)
        wave = amplitude * 32767.0 * tone / _PEAK * (0.25 + 0.75 * syllables) * fade
        yield bytes(wave.astype("<i2").tobytes())


def synth_voice(samples: int, rate: int, pitch_hz: float, amplitude: float) -> bytes:
    """The whole of :func:`voice_chunks` at once (for short signals)."""
    return b"".join(voice_chunks(samples, rate, pitch_hz, amplitude, max(1, samples)))
