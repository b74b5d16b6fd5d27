"""Energy-based speech detection and the synthetic voice."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agent.emulator.speech import EnergyVad, VadEvent, VadSettings, pitch_for_voice, synth_voice


def _tone(seconds: float, amplitude: float = 8000, rate: int = 16000) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 200 * t) * amplitude).astype(np.int16)


def _silence(seconds: float, rate: int = 16000) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def _feed(vad: EnergyVad, pcm: npt.NDArray[np.int16], frame: int = 640, rate: int = 16000
          ) -> list[tuple[VadEvent, int]]:  # fmt: skip
    """Events with the sample offset of the frame that completed them."""
    out = []
    for i in range(0, pcm.size, frame):
        out += [(e, i + frame) for e in vad.feed(pcm[i : i + frame], rate)]
    return out


def test_start_and_end_of_speech_at_the_right_times() -> None:
    vad = EnergyVad(VadSettings(start_ms=30, silence_ms=500))
    pcm = np.concatenate([_silence(0.5), _tone(1.0), _silence(1.0)])
    events = _feed(vad, pcm)
    assert [e for e, _ in events] == [VadEvent.START, VadEvent.END]
    start_at, end_at = (offset / 16000 for _, offset in events)
    assert 0.5 <= start_at <= 0.58  # within a frame of 30 ms of speech
    assert 2.0 <= end_at <= 2.06  # 500 ms of silence after the speech ended at 1.5 s
    assert vad.speech_samples >= 1.5 * 16000 - 640 * 2


def test_odd_chunk_sizes_and_rates_are_handled() -> None:
    vad = EnergyVad(VadSettings(silence_ms=300))
    pcm = np.concatenate([_tone(0.5, rate=24000), _silence(0.5, rate=24000)])
    assert [e for e, _ in _feed(vad, pcm, frame=777, rate=24000)] == [VadEvent.START, VadEvent.END]


def test_short_pauses_do_not_end_speech() -> None:
    vad = EnergyVad(VadSettings(silence_ms=800))
    pcm = np.concatenate([_tone(0.4), _silence(0.5), _tone(0.4), _silence(1.0)])
    assert [e for e, _ in _feed(vad, pcm)] == [VadEvent.START, VadEvent.END]


def test_sensitivity_moves_the_threshold() -> None:
    quiet = np.concatenate([_tone(0.4, amplitude=250), _silence(1.0)])  # about -45 dBFS
    default = VadSettings.for_setup(-40.0, 30, 600, "", "", None, None)
    high = VadSettings.for_setup(-40.0, 30, 600, "START_SENSITIVITY_HIGH", "", None, None)
    low = VadSettings.for_setup(-40.0, 30, 600, "START_SENSITIVITY_LOW", "", None, None)
    assert _feed(EnergyVad(default), quiet) == []
    assert len(_feed(EnergyVad(high), quiet)) == 2
    assert low.start_dbfs > default.start_dbfs > high.start_dbfs
    explicit = VadSettings.for_setup(-40.0, 30, 600, "", "END_SENSITIVITY_LOW", 100, 250)
    assert (explicit.start_ms, explicit.silence_ms) == (100, 250)
    assert explicit.end_dbfs < default.end_dbfs


def test_force_end() -> None:
    vad = EnergyVad(VadSettings())
    _feed(vad, _tone(0.2))
    assert vad.in_speech and vad.force_end() and not vad.in_speech
    assert not vad.force_end()


def test_synthetic_voice_is_deterministic_voiced_and_bounded() -> None:
    pcm = np.frombuffer(synth_voice(24000, 24000, 140.0, 0.3), dtype="<i2")
    assert pcm.size == 24000
    assert np.array_equal(pcm, np.frombuffer(synth_voice(24000, 24000, 140.0, 0.3), dtype="<i2"))
    assert 0.2 * 32767 < np.abs(pcm).max() <= 0.3 * 32767 + 1
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    peak_hz = np.argmax(spectrum) * 24000 / pcm.size
    assert 120 <= peak_hz <= 160  # energy at the fundamental
    assert synth_voice(0, 24000, 140.0, 0.3) == b""
    assert pitch_for_voice("Puck", None) == pitch_for_voice("Puck", None)
    assert 100 <= pitch_for_voice("Kore", None) < 180 and pitch_for_voice("x", 150.0) == 150.0


def test_the_voice_made_in_chunks_is_the_voice_made_at_once() -> None:
    from agent.emulator.speech import voice_chunks

    whole = np.frombuffer(synth_voice(30_000, 24000, 140.0, 0.3), dtype="<i2")
    chunks = list(voice_chunks(30_000, 24000, 140.0, 0.3, 2880))
    assert len(chunks) == 11 and all(len(c) == 2880 * 2 for c in chunks[:-1])
    pieces = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert pieces.size == whole.size
    assert np.max(np.abs(pieces.astype(int) - whole.astype(int))) <= 1
