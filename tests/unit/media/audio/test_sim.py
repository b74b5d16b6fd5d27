"""Simulated sources and sinks: WAV files, tones and silence in; WAV files and nothing out."""

from __future__ import annotations

import asyncio
import struct
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.media.audio import (
    SilenceSource,
    ToneSource,
    WavFileSink,
    WavFileSource,
    WavFormatError,
)

TIMEOUT = 10.0


async def collect(source: Any, limit: int = 10_000) -> list[bytes]:
    out: list[bytes] = []
    async with asyncio.timeout(TIMEOUT):
        async for chunk in source.chunks():
            out.append(chunk)
            if len(out) >= limit:
                break
    return out


@pytest.mark.parametrize(
    ("rate", "channels", "width"), [(48000, 2, 2), (44100, 1, 2), (16000, 1, 2), (22050, 2, 1)]
)
async def test_wav_source_converts_any_rate_and_width(
    sig: Any, tmp_path: Path, rate: int, channels: int, width: int
) -> None:
    tone = sig.sine(1000, 1.0, rate, 0.5)
    if width == 1:
        data = np.repeat((np.round(tone * 127) + 128).astype(np.uint8), channels).tobytes()
    else:
        data = sig.s16(tone, channels)
    path = sig.write_wav(tmp_path / "in.wav", data, rate, channels, width)
    chunks = await collect(WavFileSource(path, realtime=False))
    assert {len(c) for c in chunks} == {1280}
    assert len(chunks) == 25  # 1 s in 40 ms chunks (the last one padded)
    amplitude, snr = sig.sine_fit(sig.pcm16(b"".join(chunks))[800:15000], 1000, 16000)
    assert amplitude == pytest.approx(0.5, rel=0.02)
    assert snr > (40 if width == 1 else 60)


def write_raw_wav(
    path: Path, tag: int, bits: int, rate: int, frames: bytes, extensible: bool
) -> None:
    fmt_tag = 0xFFFE if extensible else tag
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, rate, rate * bits // 8, bits // 8, bits)
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 4) + struct.pack("<H", tag) + guid_tail
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an unknown chunk to skip
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("kind", ["float32", "int24", "int24-extensible"])
async def test_wav_source_reads_float_24bit_and_extensible(
    sig: Any, tmp_path: Path, kind: str
) -> None:
    tone = sig.sine(1000, 0.5, 48000, 0.5)
    if kind == "float32":
        frames, tag, bits = tone.astype("<f4").tobytes(), 3, 32
    else:
        ints = np.round(tone * 2**23).astype("<i4").tobytes()
        frames = b"".join(ints[i : i + 3] for i in range(0, len(ints), 4))
        tag, bits = 1, 24
    path = tmp_path / "in.wav"
    write_raw_wav(path, tag, bits, 48000, frames, extensible=kind.endswith("extensible"))
    chunks = await collect(WavFileSource(path, realtime=False))
    amplitude, snr = sig.sine_fit(sig.pcm16(b"".join(chunks))[800:7000], 1000, 16000)
    assert amplitude == pytest.approx(0.5, rel=0.01)
    assert snr > 60


def test_wav_source_rejects_bad_files_by_name(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(WavFormatError, match=r"text\.wav: not a RIFF/WAVE file"):
        WavFileSource(tmp_path / "text.wav")
    with pytest.raises(WavFormatError, match="cannot open"):
        WavFileSource(tmp_path / "missing.wav")
    write_raw_wav(tmp_path / "alaw.wav", 6, 8, 8000, b"\x00" * 10, extensible=False)
    with pytest.raises(WavFormatError, match="unsupported encoding 0x0006"):
        WavFileSource(tmp_path / "alaw.wav")


async def test_wav_source_loops_without_a_seam(sig: Any, tmp_path: Path) -> None:
    # 0.25 s of 16 kHz: exactly 250 Hz-periodic, so looping must continue the sine smoothly.
    path = sig.write_wav(tmp_path / "loop.wav", sig.s16(sig.sine(250, 0.25, 16000)), 16000, 1, 2)
    chunks = await collect(WavFileSource(path, realtime=False, loop=True), limit=40)
    y = sig.pcm16(b"".join(chunks))
    assert len(y) == 40 * 640
    assert np.max(np.abs(np.diff(y))) < 0.06  # 2*pi*250/16000*0.5 = 0.049 per sample


async def test_tone_and_silence_sources(sig: Any) -> None:
    tone = await collect(ToneSource(500, 0.4, level_dbfs=-20, realtime=False))
    assert len(tone) == 10
    y = sig.pcm16(b"".join(tone))
    assert sig.rms_db(y) == pytest.approx(-20, abs=0.1)
    assert np.max(np.abs(np.diff(y))) < 0.03  # phase-continuous across chunks
    silence = await collect(SilenceSource(0.2, realtime=False))
    assert silence == [bytes(1280)] * 5


async def test_realtime_source_is_paced_not_bursty() -> None:
    started = time.monotonic()
    chunks = await collect(SilenceSource(0.2, realtime=True, chunk_ms=40))
    # Five chunks are due at 0, 40, ... 160 ms: at least 160 ms must pass.
    assert len(chunks) == 5
    assert time.monotonic() - started >= 0.155


async def test_stop_ends_an_endless_source() -> None:
    source = ToneSource(440, None, realtime=True)

    async def stop_soon() -> None:
        await asyncio.sleep(0.1)
        await source.stop()

    stopper = asyncio.create_task(stop_soon())
    chunks = await collect(source)
    await stopper
    assert 1 <= len(chunks) <= 10


async def test_wav_sink_unpaced_writes_what_it_is_given(sig: Any, tmp_path: Path) -> None:
    pcm = sig.s16(sig.sine(440, 0.5, 24000))
    sink = WavFileSink(tmp_path / "out.wav")
    async with sink:
        sink.write(pcm[:1001])
        sink.write(pcm[1001:])
        assert not sink.is_playing
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(w.getnframes()) == pcm  # split mid-sample, rejoined


async def test_wav_sink_converts_other_rates(sig: Any, tmp_path: Path) -> None:
    sink = WavFileSink(tmp_path / "out.wav", sample_rate=24000)
    async with sink:
        sink.write(sig.s16(sig.sine(440, 1.0, 16000)), sample_rate=16000)
    with wave.open(str(tmp_path / "out.wav")) as w:
        y = sig.pcm16(w.readframes(w.getnframes()))
    assert len(y) == pytest.approx(24000, abs=2)  # including the resampler's tail
    assert sig.sine_fit(y[1000:20000], 440, 24000)[1] > 60


async def test_paced_sink_plays_in_real_time_and_flush_cuts_it(sig: Any, tmp_path: Path) -> None:
    sink = WavFileSink(tmp_path / "out.wav", realtime=True)
    async with sink:
        sink.write(sig.s16(sig.sine(440, 2.0, 24000)))
        await asyncio.sleep(0.3)
        assert sink.is_playing
        sink.flush()
        await asyncio.sleep(0.05)
        assert not sink.is_playing
        flushed_at = sink.last_audio_at
        await asyncio.sleep(0.1)
        assert sink.last_audio_at == flushed_at  # nothing more left the buffer
    with wave.open(str(tmp_path / "out.wav")) as w:
        played = w.getnframes() / 24000
    assert 0.2 <= played <= 0.45  # about the 0.3 s before the flush, not the whole 2 s
