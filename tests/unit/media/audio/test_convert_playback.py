"""Playback conversion: the model's 24 kHz mono to whatever the speaker takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.media.audio.convert import PlaybackConverter, RateAdapters
from agent.media.audio.playback import AudioPlayback


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


@pytest.mark.parametrize("rate", [-1, 0, 1, 7999, 48001, 2**64])
def test_rate_adapters_refuse_rates_that_are_not_speech(rate: int) -> None:
    adapters = RateAdapters(24000)
    with pytest.raises(ValueError, match="Hz"):
        adapters.pieces(bytes(4800), rate)
    assert len(adapters) == 0


def test_rate_adapters_keep_the_most_recently_used_few() -> None:
    adapters = RateAdapters(24000, limit=4)
    for rate in range(8000, 48001, 20):
        b"".join(adapters.pieces(bytes(160), rate))
    assert len(adapters) == 4
    b"".join(adapters.pieces(bytes(160), 16000))
    assert len(adapters) == 4


def test_a_long_chunk_is_converted_a_piece_at_a_time() -> None:
    adapters = RateAdapters(24000)
    pieces = list(adapters.pieces(bytes(8000 * 2 * 10), 8000, piece_s=0.5))  # 10 s at 8 kHz
    assert len(pieces) == 20
    assert max(len(p) for p in pieces) <= 24000 * 2 * 0.5 * 1.2  # soxr delivers unevenly
    assert sum(len(p) for p in pieces) + sum(len(t) for t in adapters.drain()) == 24000 * 2 * 10


def test_the_output_rate_passes_through_whole() -> None:
    pcm = bytes(range(256)) * 10
    assert list(RateAdapters(24000).pieces(pcm, 24000)) == [pcm]


def unopened_playback() -> AudioPlayback:
    """A playback whose device is never opened: ``write`` only queues."""
    return AudioPlayback("none", rate=48000, channels=2, open_output=lambda: pytest.fail("opened"))


@pytest.mark.parametrize("rate", [-1, 0, 1, 2**64])
def test_playback_refuses_a_rate_that_is_not_speech_and_queues_nothing(rate: int) -> None:
    playback = unopened_playback()
    with pytest.raises(ValueError, match="Hz"):
        playback.write(bytes(4800), rate)
    assert playback.buffered_s == 0.0
    playback.write(bytes(4800), 24000)  # and plays on
    assert playback.buffered_s == pytest.approx(0.1)


def test_thousands_of_rates_cost_the_playback_no_more_than_a_few_converters() -> None:
    playback = unopened_playback()
    playback.write(bytes(960), 16000)
    before = rss_mb()
    for rate in range(8000, 48000, 20):  # 2,000 rates: kept for good, ~560 MB of resamplers
        playback.write(bytes(960), rate)
    assert rss_mb() - before < 50


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024
