"""Recovery speed on loopback, against the emulator.

1. Unexpected drop: from the moment the emulator aborts the TCP connection to the first audio
   chunk arriving on the resumed connection, while the client streams 40 ms chunks in real time.
   Goal: median under 300 ms, p99 under 1 s.
2. goAway handover: continuous audio through several handovers; samples lost (goal 0) and the
   largest gap between audio arrivals at the emulator (goal under 100 ms; chunks are 40 ms apart).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics

import numpy as np

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault
from agent.emulator.server import Emulator
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession
from agent.live.types import AUDIO_INPUT_MIME, GenerativeContentBlob

CHUNK = 640
DROPS = 20


def chunk(n: int) -> np.ndarray:
    return (((np.arange(n * CHUNK, (n + 1) * CHUNK)) % 199) - 99).astype("<i2")


async def stream(session: ResilientSession, stop: asyncio.Event, sent: list[np.ndarray]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while not stop.is_set():
        samples = chunk(n)
        sent.append(samples)
        await session.send_audio_realtime(
            GenerativeContentBlob(AUDIO_INPUT_MIME, samples.tobytes())
        )
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.04 - loop.time()))


def model(emulator: Emulator) -> LiveGenerativeModel:
    backend = GeminiDeveloperBackend(api_key="k", endpoint=emulator.url)
    return LiveGenerativeModel(backend=backend, model="gemini-live-2.5-flash-preview")


async def measure_drops() -> list[float]:
    config = EmulatorConfig(connection_lifetime_s=None)
    # Isolated drops: each connection lives longer than stable_after_s, so every drop gets the
    # immediate first retry (drops in quick succession back off, by design).
    policy = ReconnectPolicy(stable_after_s=0.5)
    async with Emulator(config) as emulator, ResilientSession(model(emulator), policy) as session:
        await session.wait_live()
        stop, sent = asyncio.Event(), []
        streamer = asyncio.create_task(stream(session, stop, sent))
        await asyncio.sleep(0.3)
        for _ in range(DROPS):
            number = emulator.open_connections[-1]
            emulator.inject(Fault.drop())
            async with asyncio.timeout(10):
                while len(emulator.recordings.connections) <= number or not (
                    emulator.recordings.connection(number + 1).audio
                ):
                    await asyncio.sleep(0.005)
            await asyncio.sleep(0.6)
        stop.set()
        await streamer
        recoveries = []
        for old, new in itertools.pairwise(emulator.recordings.connections):
            if old.closed_at is not None and new.audio:
                recoveries.append(new.audio[0].t - old.closed_at)
        return recoveries


async def measure_handovers() -> tuple[int, int, float, int]:
    config = EmulatorConfig(time_scale=0.005, connection_lifetime_s=600.0)  # 3 s connections
    # 10-minute connections at 1/200 of real time: "stable" (10 s) scales with them, so each
    # handover is the normal one at the end of a long connection and resumes at once.
    policy = ReconnectPolicy(stable_after_s=10.0 * 0.005)
    async with Emulator(config) as emulator, ResilientSession(model(emulator), policy) as session:
        await session.wait_live()
        stop, sent = asyncio.Event(), []
        streamer = asyncio.create_task(stream(session, stop, sent))
        await asyncio.sleep(10.0)
        stop.set()
        await streamer
        expected = np.concatenate(sent)
        async with asyncio.timeout(5):
            while len(emulator.recordings.session().audio_samples()) < len(expected):
                await asyncio.sleep(0.01)
        recording = emulator.recordings.session()
        received = recording.audio_samples()
        lost = len(expected) - len(received)
        mismatched = int(np.count_nonzero(received[: len(expected)] != expected[: len(received)]))
        arrivals = [a.t for a in recording.audio]
        gap = max(b - a for a, b in itertools.pairwise(arrivals))
        return session.stats.go_aways, lost + mismatched, gap, len(recording.connections)


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.99 * len(values)) - 1)]


def test_recovery_speed() -> None:
    drops = asyncio.run(measure_drops())
    go_aways, lost, gap, connections = asyncio.run(measure_handovers())
    median_ms, p99_ms = statistics.median(drops) * 1e3, p99(drops) * 1e3
    print("\n\nRecovery on loopback (emulator, 40 ms chunks streamed in real time)")
    print(f"{'measure':<58}{'value':>12}{'goal':>12}{'met':>6}")
    rows = [
        (
            f"drop -> audio on resumed connection, median (n={len(drops)})",
            median_ms,
            "< 300 ms",
            median_ms < 300,
        ),
        ("drop -> audio on resumed connection, p99", p99_ms, "< 1000 ms", p99_ms < 1000),
        (
            f"goAway handovers ({go_aways}, {connections} connections): samples lost",
            lost,
            "0",
            lost == 0,
        ),
        ("goAway handover: largest gap between chunks", gap * 1e3, "< 100 ms", gap < 0.1),
    ]
    for name, value, goal, met in rows:
        unit = "" if isinstance(value, int) else " ms"
        shown = f"{value}" if isinstance(value, int) else f"{value:.1f}"
        print(f"{name:<58}{shown + unit:>12}{goal:>12}{'yes' if met else 'NO':>6}")


if __name__ == "__main__":
    test_recovery_speed()
