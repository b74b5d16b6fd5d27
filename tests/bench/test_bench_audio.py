"""Audio benchmark: capture conversion cost and latency, ours side by side with the baselines.

Run with ``python -m pytest -s tests/bench/test_bench_audio.py``. Prints tables; never fails on
timing (only on broken measurements).

1. CPU per second of audio, 48 kHz stereo S32 (24-bit) to 16 kHz mono S16 in 40 ms chunks:
   our converter (FIR path, and forced soxr) against ``scipy.signal.resample_poly`` on the same
   chunks and plain decimation by 3; with the aliasing (10 kHz tone left at 16 kHz), the seam
   error (chunked vs one-shot) and the group delay of each.
2. The whole path from the PyAudio buffer to a chunk ready for the session, through a real
   PyAudio stream on the virtual ALSA mic: CPU per second of audio, and the age of each chunk's
   first sample when the consumer gets it (p50/p99/max), paced at the real rate.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import resample_poly  # type: ignore[import-untyped]

from agent.media.audio import AudioCapture, CaptureFormat
from agent.media.audio.convert import CaptureConverter
from agent.media.audio.virtual_alsa import VirtualAlsa
from tests.support.virtual_alsa_fixtures import virtual_alsa  # noqa: F401  (fixture)

FMT = CaptureFormat(rate=48000, channels=2, sample_format="int32", channel=0, shift=8)
CHUNK_FRAMES = 1920  # 40 ms at 48 kHz
SECONDS = 10.0
GOAL_CPU_PCT = 1.0
GOAL_EXTRA_MS = 5.0

Converter = Callable[[bytes], bytes]


def i2s(signal: npt.NDArray[np.float64]) -> bytes:
    frames = np.zeros((len(signal), 2), np.int32)
    frames[:, 0] = (np.round(signal * 2**23).astype(np.int32)) << 8
    return frames.tobytes()


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * 48000)) / 48000
    return amplitude * np.sin(2 * math.pi * freq * t)


def pick(raw: bytes) -> npt.NDArray[np.float32]:
    frames = np.frombuffer(raw, "<i4").reshape(-1, 2)
    return (frames[:, 0] >> 8).astype(np.float32) * np.float32(2.0**-23)


def to_s16(x: npt.NDArray[np.floating[Any]]) -> bytes:
    return bytes(np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2").tobytes())


def make_ours(resampler: str) -> Converter:
    converter = CaptureConverter(FMT, resampler=resampler)
    return lambda raw: b"".join(converter.feed(raw))


def make_scipy() -> Converter:
    return lambda raw: to_s16(resample_poly(pick(raw), 1, 3))


def make_naive() -> Converter:
    return lambda raw: to_s16(pick(raw)[::3])


CANDIDATES: list[tuple[str, Callable[[], Converter]]] = [
    ("ours (FIR, default)", lambda: make_ours("auto")),
    ("ours with soxr HQ stream", lambda: make_ours("soxr")),
    ("scipy resample_poly per chunk", make_scipy),
    ("decimate by 3, no filter", make_naive),
]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def run_chunks(make: Callable[[], Converter], raw: bytes) -> tuple[bytes, float]:
    convert = make()
    step = CHUNK_FRAMES * 8
    pieces = [raw[i : i + step] for i in range(0, len(raw), step)]
    started = time.process_time()
    out = b"".join(convert(p) for p in pieces)
    return out, time.process_time() - started


def residual_db(out: bytes, skip: int = 1600) -> float:
    y = np.frombuffer(out, "<i2")[skip:].astype(np.float64) / 32768.0
    return 10 * math.log10(max(float(np.mean(y**2)), 1e-30)) - 10 * math.log10(0.125)


def seam_lsb(make: Callable[[], Converter], raw: bytes) -> int:
    one_shot = np.frombuffer(make()(raw), "<i2").astype(int)
    chunked = np.frombuffer(run_chunks(make, raw)[0], "<i2").astype(int)
    n = min(len(one_shot), len(chunked))
    return int(np.max(np.abs(one_shot[100 : n - 100] - chunked[100 : n - 100])))


def latency_ms(name: str) -> float:
    """What the conversion adds before a sample can leave: the FIR's group delay, soxr's
    held-back output; the stateless baselines add none (and pay for it in seams)."""
    if name.startswith("ours"):
        return CaptureConverter(FMT, resampler="soxr" if "soxr" in name else "auto").delay_s * 1e3
    return 0.0


def test_bench_conversion_cpu_aliasing_and_seams() -> None:
    speech_band = i2s(tone(1000, SECONDS, 0.5) + 0.2 * tone(3100, SECONDS))
    alias_probe = i2s(tone(10000, 2.0, 0.5))
    rows = []
    for name, make in CANDIDATES:
        run_chunks(make, speech_band[: 48000 * 8])  # warm-up
        cpu = min(run_chunks(make, speech_band)[1] for _ in range(3)) / SECONDS
        rows.append(
            (
                name,
                cpu,
                residual_db(run_chunks(make, alias_probe)[0]),
                seam_lsb(make, i2s(tone(440, 1.0, 0.5))),
                latency_ms(name),
            )
        )
    ours = rows[0][1]
    print("\n\nCapture conversion, 48 kHz stereo S32 -> 16 kHz mono S16, 40 ms chunks")
    print(
        f"{'path':32} {'us/s audio':>10} {'% core':>7} {'x ours':>7} "
        f"{'10k alias dB':>12} {'seam LSB':>9} {'adds ms':>8}"
    )
    for name, cpu, alias, seam, delay in rows:
        print(
            f"{name:32} {cpu * 1e6:10.0f} {cpu * 100:7.3f} {cpu / ours:7.2f} "
            f"{alias:12.1f} {seam:9d} {delay:8.2f}"
        )
    print(
        f"goal: conversion well under {GOAL_CPU_PCT}% of one core -> "
        f"{'met' if ours * 100 < GOAL_CPU_PCT else 'NOT met'} ({ours * 100:.3f}%)"
    )
    assert rows[0][2] < -60 and rows[3][2] > -10  # the measurements measure what they claim


async def capture_run(
    alsa: VirtualAlsa, resampler: str, seconds: float, paced: bool
) -> tuple[list[float], float]:
    """Chunk ages (s) and CPU seconds (capture thread + loop) per second of audio."""
    mic = alsa.mic()
    raw = i2s(tone(440, seconds + 1.0, 0.3))
    capture = AudioCapture("vmic", FMT)
    read_bytes = capture.read_frames * 8
    mic.play(raw, block_bytes=read_bytes, bytes_per_second=48000 * 8 if paced else None)
    capture.converter = CaptureConverter(FMT, resampler=resampler)
    handed: list[float] = []
    want = int(seconds * 25)
    async with capture:
        thread = capture._thread
        assert thread is not None and thread.ident is not None
        clock = time.pthread_getcpuclockid(thread.ident)
        thread_cpu0 = main_cpu0 = 0.0
        async with asyncio.timeout(seconds * 3 + 10):
            async for _ in capture.chunks():
                handed.append(time.monotonic())
                if len(handed) == 1:  # from the first chunk on: leaves out PortAudio's setup
                    thread_cpu0, main_cpu0 = time.clock_gettime(clock), time.thread_time()
                if len(handed) == want:
                    break
        loop_cpu = time.thread_time() - main_cpu0
        thread_cpu = time.clock_gettime(clock) - thread_cpu0
        mic.close()
    written = dict(mic.written_at)
    ages = []
    for k, at in enumerate(handed):
        first_block = k * CHUNK_FRAMES * 8 + read_bytes
        if first_block in written:  # written when its last sample existed; its first is older
            ages.append(at - (written[first_block] - read_bytes / (48000 * 8)))
    return ages, (thread_cpu + loop_cpu) / ((want - 1) * 0.04)


@pytest.mark.usefixtures("virtual_alsa")
def test_bench_pyaudio_path_cpu_and_latency(virtual_alsa: VirtualAlsa) -> None:  # noqa: F811
    print("\n\nPyAudio buffer -> chunk handed to the session (real PyAudio stream, virtual mic)")
    print(
        f"{'path':26} {'% core':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99 - chunk':>11}"
    )
    results = {}
    for resampler in ("auto", "soxr"):
        # Least of three runs: the machine is shared, and noise only ever adds CPU time.
        cpu = min(
            asyncio.run(capture_run(virtual_alsa, resampler, SECONDS / 2, paced=False))[1]
            for _ in range(3)
        )
        ages, _ = asyncio.run(capture_run(virtual_alsa, resampler, 5.0, paced=True))
        ms = np.array(ages) * 1000
        p50, p99, top = np.percentile(ms, 50), np.percentile(ms, 99), ms.max()
        results[resampler] = (cpu, p99)
        name = "ours (FIR, default)" if resampler == "auto" else "ours with soxr HQ stream"
        print(f"{name:26} {cpu * 100:7.3f} {p50:7.1f} {p99:7.1f} {top:7.1f} {p99 - 40:11.1f}")
    cpu, p99 = results["auto"]
    print(
        f"goal: < {GOAL_CPU_PCT}% of one core -> {verdict(cpu * 100 < GOAL_CPU_PCT)}; "
        f"p99 < 40 + {GOAL_EXTRA_MS:.0f} ms -> {verdict(p99 < 40 + GOAL_EXTRA_MS)}"
    )
    print(
        f"soxr/FIR latency ratio at p99: {results['soxr'][1] / p99:.2f}; "
        f"CPU ratio: {results['soxr'][0] / cpu:.2f}"
    )
    assert threading.active_count() >= 1
    assert p99 > 40  # a chunk cannot be handed over before its last sample exists
