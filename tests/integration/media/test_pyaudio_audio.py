"""Capture and playback through PyAudio itself, on virtual ALSA devices paced in real time."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import numpy as np
import pytest
import structlog

from agent.media.audio import (
    AudioCapture,
    AudioPlayback,
    CaptureFormat,
    HalfDuplexGate,
    list_audio_devices,
    load_mic_profile,
)
from agent.media.audio.capture import PyAudioInput
from agent.media.audio.devices import PortAudio
from agent.media.audio.virtual_alsa import VirtualAlsa, VirtualMic, VirtualSpeaker

TIMEOUT = 10.0
READ_S = 0.040  # AudioCapture reads one 40 ms chunk at a time
READ_BYTES = 1920 * 8  # 1920 frames of 2 ch S32 at 48 kHz
I2S_BYTES_PER_S = 48000 * 8


def i2s_tone(
    freq: float, seconds: float, amplitude: float, dc: float = 0.0, bits: int = 24
) -> bytes:
    t = np.arange(round(seconds * 48000)) / 48000
    value = np.round((amplitude * np.sin(2 * math.pi * freq * t) + dc) * 2 ** (bits - 1))
    frames = np.zeros((len(t), 2), np.int32)
    frames[:, 0] = value.astype(np.int32) << (32 - bits)
    frames[:, 1] = np.int32(0x5A5A5A5A)  # the unused slot carries junk on a real bus
    return frames.tobytes()


def fit(y: np.ndarray, freq: float, rate: int) -> tuple[float, float]:
    t = np.arange(len(y)) / rate
    basis = np.vstack(
        [np.sin(2 * math.pi * freq * t), np.cos(2 * math.pi * freq * t), np.ones_like(t)]
    ).T
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    residual = y - basis @ coef
    signal = basis[:, :2] @ coef[:2]
    return float(math.hypot(coef[0], coef[1])), 10 * math.log10(
        np.sum(signal**2) / np.sum(residual**2)
    )


async def take(capture: AudioCapture, count: int) -> list[tuple[float, bytes]]:
    out: list[tuple[float, bytes]] = []
    async with asyncio.timeout(TIMEOUT):
        async for chunk in capture.chunks():
            out.append((time.monotonic(), chunk))
            if len(out) == count:
                break
    return out


def test_virtual_devices_are_listed_with_their_formats(virtual_alsa: VirtualAlsa) -> None:
    devices = {d.name: d for d in list_audio_devices()}
    assert {"vmic", "vmic_i2s", "vspk"} <= set(devices)
    assert "48000/int32" in devices["vmic"].input_formats
    assert devices["vspk"].max_output_channels >= 2


async def test_i2s_mic_through_pyaudio_real_time(virtual_mic: VirtualMic) -> None:
    """SPH0645-like input: 18-bit in S32, DC offset, junk in the other slot, paced at 48 kHz."""
    fmt = load_mic_profile("sph0645")
    fmt = CaptureFormat(**{**fmt.__dict__, "gain_db": 0.0})
    virtual_mic.play(
        i2s_tone(1000, 2.0, 0.25, dc=0.1, bits=18),
        block_bytes=READ_BYTES,
        bytes_per_second=I2S_BYTES_PER_S,
    )
    capture = AudioCapture("vmic", fmt)
    async with capture:
        got = await take(capture, 40)  # 1.6 s
        # Counted before the feed closes: a closed pipe makes the plugin return stale data
        # with no clock, which floods the queue by design of the test device, not the capture.
        dropped_while_live = capture.dropped
        virtual_mic.close()
    y = np.frombuffer(b"".join(c for _, c in got), "<i2") / 32768.0
    amplitude, snr = fit(y[8000:], 1000, 16000)
    assert amplitude == pytest.approx(0.25, rel=0.02)
    assert snr > 50
    assert abs(np.mean(y[8000:])) < 0.002  # the 0.1 DC offset is gone
    assert dropped_while_live == 0
    # Real-time pacing came through PortAudio: 40 chunks took about 1.6 s.
    assert got[-1][0] - got[0][0] == pytest.approx(39 * 0.04, abs=0.25)


async def test_capture_latency_is_one_chunk_plus_a_little(virtual_mic: VirtualMic) -> None:
    fmt = CaptureFormat(rate=48000, channels=2, sample_format="int32", shift=8)
    virtual_mic.play(
        i2s_tone(440, 2.0, 0.3), block_bytes=READ_BYTES, bytes_per_second=I2S_BYTES_PER_S
    )
    capture = AudioCapture("vmic", fmt)
    async with capture:
        got = await take(capture, 30)
        virtual_mic.close()
    written = dict(virtual_mic.written_at)
    chunk_bytes = 1920 * 8
    ages = []
    for k, (handed_at, _) in enumerate(got):
        first_block_end = k * chunk_bytes + READ_BYTES
        if first_block_end in written:  # its first sample entered the device a read earlier
            ages.append(handed_at - (written[first_block_end] - READ_S))
    assert len(ages) >= 25
    # Correctness, not speed: the chunk is handed over right after its last block arrives
    # (the benchmark measures the distribution). 40 ms of audio + resampler + hop.
    assert np.median(ages) < 0.040 + 0.015


async def test_vmic_i2s_plug_device_opens_in_the_i2s_format(virtual_mic: VirtualMic) -> None:
    # The feed is 16 kHz mono S16; ALSA's plug presents it as 48 kHz / 2 ch / S32.
    t = np.arange(16000 * 2) / 16000
    feed = (0.3 * np.sin(2 * math.pi * 500 * t) * 32767).astype("<i2").tobytes()
    # The plug reads 20 ms (640 bytes) of the feed per 20 ms read of the app.
    virtual_mic.play(feed, block_bytes=640, bytes_per_second=32000)
    fmt = CaptureFormat(**{**load_mic_profile("inmp441").__dict__, "gain_db": 0.0})
    capture = AudioCapture("vmic_i2s", fmt, read_ms=20)
    async with capture:
        got = await take(capture, 20)
        virtual_mic.close()
    y = np.frombuffer(b"".join(c for _, c in got), "<i2") / 32768.0
    amplitude, snr = fit(y[3200:], 500, 16000)
    assert amplitude == pytest.approx(0.3, rel=0.05)
    assert snr > 30  # ALSA's own linear rate converter sits in between


def test_vmic_plug_device_converts_an_i2s_feed_for_a_16k_app(virtual_mic: VirtualMic) -> None:
    # The feed is in the I2S format (48 kHz / 2 ch / S32, the tone on both channels, as ALSA's
    # plug mixes them down); the app opens 16 kHz mono S16 with 1024-frame reads, like the Live
    # API cookbook. The plug reads 64 ms (3072 frames) of the feed per read of the app.
    t = np.arange(48000 * 3) / 48000
    tone = np.round(0.3 * np.sin(2 * math.pi * 500 * t) * 2**31).astype("<i4")
    virtual_mic.play(
        np.repeat(tone[:, None], 2, axis=1).tobytes(),
        block_bytes=3072 * 8,
        bytes_per_second=I2S_BYTES_PER_S,
    )
    host = PortAudio()
    try:
        index = host.find("vmic_plug", want_input=True)["index"]
        stream = host.pa.open(
            format=host.format_code("int16"), channels=1, rate=16000, input=True,
            input_device_index=index, frames_per_buffer=1024,
        )
        data = b"".join(stream.read(1024, exception_on_overflow=False) for _ in range(30))
        stream.close()
    finally:
        virtual_mic.close()
        host.close()
    amplitude, snr = fit(np.frombuffer(data, "<i2")[8000:] / 32768.0, 500, 16000)
    assert amplitude == pytest.approx(0.3, rel=0.05)
    assert snr > 30


async def test_device_error_mid_stream_reopens_and_audio_continues(virtual_mic: VirtualMic) -> None:
    fmt = CaptureFormat(rate=48000, channels=2, sample_format="int32", shift=8)
    virtual_mic.play(
        i2s_tone(440, 3.0, 0.3), block_bytes=READ_BYTES, bytes_per_second=I2S_BYTES_PER_S
    )
    opens = 0

    class Unplugged(PyAudioInput):
        """The real PyAudio stream, failing after 10 reads as an unplugged USB mic does."""

        reads = 0

        def read(self, frames: int) -> bytes:
            self.reads += 1
            if self.reads > 10:
                raise OSError(-9999, "Unanticipated host error")
            return super().read(frames)

    def open_input() -> PyAudioInput:
        nonlocal opens
        opens += 1
        return Unplugged("vmic", fmt, 1920)

    capture = AudioCapture("vmic", fmt, open_input=open_input, reopen_initial_s=0.05)
    with structlog.testing.capture_logs() as logs:
        async with capture:
            got = await take(capture, 20)  # needs a second open: 10 reads make 10 chunks
            virtual_mic.close()
    events = [e["event"] for e in logs]
    assert events.count("audio.capture.opened") >= 2
    assert "audio.capture.read_failed" in events
    assert opens >= 2 and len(got) == 20


async def test_playback_through_pyaudio_plays_the_tone_at_the_device_rate(
    virtual_speaker: Callable[[int], VirtualSpeaker],
) -> None:
    speaker = virtual_speaker(48000 * 4)
    playback = AudioPlayback("vspk", rate=48000, channels=2)
    t = np.arange(24000) / 24000
    tone = (0.4 * np.sin(2 * math.pi * 440 * t) * 32767).astype("<i2").tobytes()
    async with playback:
        assert (playback.output_rate, playback.output_channels) == (48000, 2)
        for i in range(0, len(tone), 1920):  # 40 ms pieces, as the model sends them
            playback.write(tone[i : i + 1920])
        assert playback.is_playing
        for _ in range(int(TIMEOUT / 0.02)):  # poll: is_playing is a property, not an event
            if not playback.is_playing:
                break
            await asyncio.sleep(0.02)
        assert not playback.is_playing
        await asyncio.sleep(0.1)
    frames = (
        np.frombuffer(speaker.data[: len(speaker.data) // 4 * 4], "<i2").reshape(-1, 2) / 32768.0
    )
    loud = np.flatnonzero(np.abs(frames[:, 0]) > 0.01)
    played = frames[loud[0] : loud[-1] + 1, 0]
    # ALSA's file plugin keeps the last ALSA buffer (~20 ms) until the stream closes, and an
    # abort on close drops it: up to 40 ms may be missing at the end on this virtual device.
    assert len(played) == pytest.approx(48000 - 960, abs=960)
    amplitude, snr = fit(played[2000:-2000], 440, 48000)
    assert amplitude == pytest.approx(0.4, rel=0.02)
    assert snr > 50
    assert playback.last_audio_at is not None


async def test_flush_silences_the_speaker_within_50ms(
    virtual_speaker: Callable[[int], VirtualSpeaker],
) -> None:
    speaker = virtual_speaker(48000 * 4)
    playback = AudioPlayback("vspk", rate=48000, channels=2)
    t = np.arange(24000 * 3) / 24000
    tone = (0.4 * np.sin(2 * math.pi * 440 * t) * 32767).astype("<i2").tobytes()
    async with playback:
        playback.write(tone)
        await asyncio.sleep(0.6)
        flushed_at = time.monotonic()
        playback.flush()
        await asyncio.sleep(0.3)
        assert not playback.is_playing
        closing_at = time.monotonic()
    # ALSA's file plugin holds the last written ALSA buffer until the next write or the close,
    # and hands it over at close: that audio played right away on a real card, so what arrives
    # during the close is not counted as late.
    loud_at = [
        at
        for at, data in speaker.chunks
        if at < closing_at
        and np.abs(np.frombuffer(data[: len(data) // 2 * 2], "<i2")).max(initial=0) > 300
    ]
    assert loud_at and loud_at[0] < flushed_at  # it was playing
    # The device (here: the drain) still receives what was in flight; then silence.
    assert loud_at[-1] - flushed_at < 0.050


async def test_half_duplex_gate_with_real_devices(
    virtual_mic: VirtualMic, virtual_speaker: Callable[[int], VirtualSpeaker]
) -> None:
    fmt = CaptureFormat(rate=48000, channels=2, sample_format="int32", shift=8)
    # Ten seconds of tone, though the test takes about one: on a loaded machine (qemu-user
    # beside other tiers) the speaker may sound for seconds, and a tone that ended meanwhile
    # would leave the capture nothing to pass once the gate opens.
    virtual_mic.play(
        i2s_tone(300, 10.0, 0.3), block_bytes=READ_BYTES, bytes_per_second=I2S_BYTES_PER_S
    )
    virtual_speaker(48000 * 4)
    playback = AudioPlayback("vspk", rate=48000, channels=2)
    capture = AudioCapture("vmic", fmt)
    gate = HalfDuplexGate(capture, playback, tail_ms=200)
    passed: list[float] = []
    async with playback, gate:
        started = time.monotonic()
        playback.write(bytes(24000))  # 0.5 s of model speech (silence will do)
        async with asyncio.timeout(TIMEOUT):
            async for _ in gate.chunks():
                passed.append(time.monotonic() - started)
                if len(passed) == 10:
                    break
        virtual_mic.close()
    assert gate.muted_chunks >= 10  # ~0.7 s muted at 40 ms a chunk
    assert passed[0] >= 0.5 + 0.2 - 0.05
