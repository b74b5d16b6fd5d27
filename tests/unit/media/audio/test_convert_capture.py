"""Capture conversion with known signals: frequency, SNR, aliasing, DC, seams, gain."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from agent.media.audio.convert import CaptureConverter, CaptureFormat, to_int16_bytes
from agent.media.audio.filters import AutoGain, DcBlocker, FirDecimator

I2S24 = CaptureFormat(rate=48000, channels=2, sample_format="int32", channel=0, shift=8)
SPH0645 = CaptureFormat(rate=48000, channels=2, sample_format="int32", channel=0, shift=14)
USB441 = CaptureFormat(rate=44100, channels=1, sample_format="int16")


def convert(fmt: CaptureFormat, raw: bytes, **kw: Any) -> bytes:
    return b"".join(CaptureConverter(fmt, **kw).feed(raw))


def test_1khz_keeps_frequency_level_and_snr_above_60db(sig: Any) -> None:
    out = sig.pcm16(convert(I2S24, sig.i2s_frames(sig.sine(1000, 2.0, 48000, 0.5))))
    amplitude, snr = sig.sine_fit(out[1600:], 1000, 16000)  # skip the DC blocker's settling
    assert amplitude == pytest.approx(0.5, rel=0.01)
    assert snr > 60


def test_10khz_tone_is_suppressed_by_at_least_60db(sig: Any) -> None:
    out = sig.pcm16(convert(I2S24, sig.i2s_frames(sig.sine(10000, 2.0, 48000, 0.5))))
    assert sig.rms_db(out[1600:]) - sig.rms_db(sig.sine(10000, 1.0, 48000, 0.5)) < -60


def test_tone_just_above_output_band_is_suppressed(sig: Any) -> None:
    # 9.5 kHz would alias onto 6.5 kHz, inside the speech band.
    out = sig.pcm16(convert(I2S24, sig.i2s_frames(sig.sine(9500, 1.0, 48000, 0.5))))
    assert sig.rms_db(out[800:]) < -60


def test_soxr_path_for_44k1_keeps_1khz_and_rejects_10khz(sig: Any) -> None:
    keep = sig.pcm16(convert(USB441, sig.s16(sig.sine(1000, 2.0, 44100, 0.5))))
    amplitude, snr = sig.sine_fit(keep[3200:], 1000, 16000)
    assert amplitude == pytest.approx(0.5, rel=0.01)
    assert snr > 60
    reject = sig.pcm16(convert(USB441, sig.s16(sig.sine(10000, 2.0, 44100, 0.5))))
    assert sig.rms_db(reject[3200:]) < -60


@pytest.mark.parametrize("fmt", [I2S24, USB441], ids=["fir-48k", "soxr-44k1"])
def test_chunked_conversion_of_a_sweep_equals_one_shot(sig: Any, fmt: CaptureFormat) -> None:
    signal = sig.sweep(50, 7000, 3.0, fmt.rate, 0.7)
    raw = sig.i2s_frames(signal) if fmt.sample_format == "int32" else sig.s16(signal)
    one_shot = np.frombuffer(convert(fmt, raw), "<i2").astype(int)
    rng = random.Random(7)
    converter = CaptureConverter(fmt)
    pieces: list[bytes] = []
    pos = 0
    while pos < len(raw):  # odd sizes on purpose: half frames and half samples too
        step = rng.randint(1, 9000)
        pieces += converter.feed(raw[pos : pos + step])
        pos += step
    chunked = np.frombuffer(b"".join(pieces), "<i2").astype(int)
    assert len(chunked) == len(one_shot) > 0
    assert np.max(np.abs(chunked - one_shot)) <= 1  # float rounding at most


def test_chunks_have_no_clicks_at_their_boundaries(sig: Any) -> None:
    converter = CaptureConverter(I2S24, chunk_ms=20)
    raw = sig.i2s_frames(sig.sine(440, 1.0, 48000, 0.5))
    chunks = [c for i in range(0, len(raw), 3840) for c in converter.feed(raw[i : i + 3840])]
    y = sig.pcm16(b"".join(chunks))[800:]
    # A 440 Hz sine at 0.5 moves at most 2*pi*440/16000*0.5 = 0.086 per sample.
    assert np.max(np.abs(np.diff(y))) < 0.09


def test_chunk_size_and_count() -> None:
    converter = CaptureConverter(I2S24, chunk_ms=40)
    chunks = converter.feed(bytes(48000 * 8))  # 1 s of stereo S32
    assert [len(c) for c in chunks] == [1280] * 25
    assert converter.feed(bytes(100 * 8)) == []  # 100 frames: not a chunk yet


def test_flush_pads_the_last_partial_chunk() -> None:
    converter = CaptureConverter(CaptureFormat(rate=16000), chunk_ms=40)
    assert converter.feed(bytes(700 * 2)) != []
    tail = converter.flush()
    assert [len(c) for c in tail] == [1280]


def test_sph0645_dc_offset_is_removed(sig: Any) -> None:
    raw = sig.i2s_frames(sig.sine(1000, 3.0, 48000, 0.1), bits=18, dc=0.2)
    out = sig.pcm16(convert(SPH0645, raw))
    assert abs(np.mean(out[16000:])) < 0.001  # from 0.2 of full scale
    amplitude, snr = sig.sine_fit(out[16000:], 1000, 16000)
    assert amplitude == pytest.approx(0.1, rel=0.02)
    assert snr > 50


def test_without_dc_block_the_offset_stays(sig: Any) -> None:
    fmt = CaptureFormat(**{**SPH0645.__dict__, "dc_block": False})
    out = sig.pcm16(convert(fmt, sig.i2s_frames(sig.sine(1000, 1.0, 48000, 0.1), bits=18, dc=0.2)))
    assert np.mean(out[800:]) == pytest.approx(0.2, abs=0.002)


def test_shift_drops_garbage_below_the_mic_precision(sig: Any) -> None:
    clean = sig.i2s_frames(sig.sine(1000, 0.5, 48000, 0.3), bits=18)
    frames = np.frombuffer(clean, np.int32).copy()
    frames |= np.int32(0x3FFF)  # junk in the 14 unused bits
    shifted = convert(SPH0645, frames.tobytes())
    assert shifted == convert(SPH0645, clean)


def test_channel_pick_takes_the_right_slot(sig: Any) -> None:
    raw = sig.i2s_frames(sig.sine(1000, 1.0, 48000, 0.5), slot=1)
    left = sig.pcm16(convert(I2S24, raw))
    right = sig.pcm16(convert(CaptureFormat(**{**I2S24.__dict__, "channel": 1}), raw))
    assert sig.rms_db(left) < -90
    assert sig.rms_db(right[800:]) == pytest.approx(
        sig.rms_db(sig.sine(1000, 1, 16000, 0.5)), abs=0.2
    )


def test_mix_averages_the_channels(sig: Any) -> None:
    fmt = CaptureFormat(rate=48000, channels=2, sample_format="int16", channel="mix")
    tone = sig.sine(1000, 1.0, 48000, 0.5)
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1).reshape(-1)
    out = sig.pcm16(convert(fmt, sig.s16(stereo)))
    amplitude, _ = sig.sine_fit(out[800:], 1000, 16000)
    assert amplitude == pytest.approx(0.25, rel=0.01)


def test_fixed_gain_and_clipping(sig: Any) -> None:
    fmt = CaptureFormat(**{**I2S24.__dict__, "gain_db": 20.0})
    quiet = sig.pcm16(convert(fmt, sig.i2s_frames(sig.sine(1000, 1.0, 48000, 0.01))))
    assert sig.sine_fit(quiet[800:], 1000, 16000)[0] == pytest.approx(0.1, rel=0.01)
    loud = np.frombuffer(convert(fmt, sig.i2s_frames(sig.sine(1000, 1.0, 48000, 0.5))), "<i2")
    assert loud.max() == 32767 and loud.min() == -32768  # clipped, not wrapped around


def test_agc_raises_quiet_speech_and_never_clips_loud(sig: Any) -> None:
    fmt = CaptureFormat(**{**I2S24.__dict__, "agc": True})
    quiet = sig.pcm16(convert(fmt, sig.i2s_frames(sig.sine(300, 8.0, 48000, 0.01))))  # -43 dBFS
    assert sig.rms_db(quiet[-16000:]) == pytest.approx(-20, abs=3)
    loud = np.frombuffer(convert(fmt, sig.i2s_frames(sig.sine(300, 2.0, 48000, 0.99))), "<i2")
    assert np.abs(loud.astype(int)).max() < 32767


def test_agc_does_not_pump_up_silence() -> None:
    agc = AutoGain(16000)
    hiss = (np.random.default_rng(1).standard_normal(16000) * 1e-4).astype(np.float32)  # -80 dBFS
    for i in range(0, 16000 * 1, 640):
        agc.process(hiss[i : i + 640])
    assert agc.gain_db == 0.0


def test_capture_format_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="channel"):
        CaptureFormat(channels=2, channel=2)
    with pytest.raises(ValueError, match="sample_format"):
        CaptureFormat(sample_format="float32")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shift"):
        CaptureFormat(sample_format="int16", shift=8)
    with pytest.raises(ValueError, match="rate"):
        CaptureFormat(rate=0)


def test_fir_decimator_streams_exactly_and_adds_about_1ms(sig: Any) -> None:
    x = sig.sweep(10, 7000, 1.0, 48000).astype(np.float32)
    whole = FirDecimator(3, 48000).process(x)
    dec = FirDecimator(3, 48000)
    parts = [
        dec.process(x[i : i + n]) for i, n in zip(range(0, 48000, 7), [7] * 7000, strict=False)
    ]
    assert len(whole) == 16000
    np.testing.assert_allclose(np.concatenate(parts)[: len(whole)], whole, atol=1e-6)
    assert dec.delay_s < 0.002


@pytest.mark.parametrize(("factor", "in_rate"), [(2, 32000), (3, 48000), (4, 64000)])
def test_fir_decimator_equals_filtering_every_sample_and_keeping_every_nth(
    factor: int, in_rate: int
) -> None:
    x = np.random.default_rng(5).standard_normal(in_rate // 4).astype(np.float32)
    decimator = FirDecimator(factor, in_rate)
    got = np.concatenate([decimator.process(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    want = np.convolve(x.astype(np.float64), decimator.taps.astype(np.float64))[: len(x)][::factor]
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_dc_blocker_matches_the_per_sample_recursion() -> None:
    x = np.random.default_rng(3).standard_normal(5000).astype(np.float32)
    blocker = DcBlocker(16000)
    got = np.concatenate([blocker.process(x[i : i + 333]) for i in range(0, 5000, 333)])
    want = np.zeros(5000)
    prev_x = prev_y = 0.0
    for n, v in enumerate(x.astype(np.float64)):
        prev_y = v - prev_x + blocker.r * prev_y
        prev_x = v
        want[n] = prev_y
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_to_int16_rounds_and_saturates() -> None:
    x = np.array([0.0, 0.5 / 32768, -1.5, 1.5, 0.25], np.float32)
    assert np.frombuffer(to_int16_bytes(x), "<i2").tolist() == [0, 0, -32768, 32767, 8192]
