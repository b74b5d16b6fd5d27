"""Voice latency end to end against the emulator, whose model takes a known time: the service's
end of speech (``silence_duration_ms`` of silence, in audio time) plus a fixed thinking time
(``reply_delay_s``). Spoken bursts leave a real-time paced source in 40 ms chunks through the
agent's conversation and resilient session over a WebSocket; the reply's first audio reaches a
speaker that timestamps it (the playback buffer starts a device's block within its 10 ms once
a 120 ms reply chunk is in it). The agent's share is the rest: from the end of the user's
speech to the first reply audio at the speaker, less the model's known time. Goal: under 50 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.live.conversation import start_audio_conversation
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ResilientSession

RATE = 16_000
CHUNK = 640  # 40 ms
SPEECH_S, PAUSE_S = 0.6, 1.8
TURNS = 20
SILENCE_MS = 600  # the emulator's end of speech
THINKING_S = 0.2  # the emulator's model: its time before the reply starts
GOAL_MS = 50.0


class PacedSpeech:
    """Bursts of voice then silence, one 40 ms chunk per 40 ms of wall time; ``ends`` holds the
    wall time at which each burst's last voiced sample was captured."""

    def __init__(self) -> None:
        t = np.arange(int(SPEECH_S * RATE)) / RATE
        voice = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        burst = np.concatenate([voice, np.zeros(int(PAUSE_S * RATE))])
        pcm = (burst * 32767).astype("<i2").tobytes()
        self.period = [pcm[i:i + 2 * CHUNK] for i in range(0, len(pcm), 2 * CHUNK)]
        self.voiced = int(SPEECH_S * RATE) // CHUNK
        self.ends: list[float] = []

    async def chunks(self) -> AsyncIterator[bytes]:
        start = time.monotonic()
        n = 0
        for _ in range(TURNS + 1):
            for i, chunk in enumerate(self.period):
                n += 1
                await asyncio.sleep(max(0.0, start + n * CHUNK / RATE - time.monotonic()))
                if i == self.voiced - 1:
                    self.ends.append(time.monotonic())
                yield chunk
        while True:
            await asyncio.sleep(3600)
            yield b""


class TimedSpeaker:
    """An AudioSink that notes when each write arrives."""

    def __init__(self) -> None:
        self.writes: list[float] = []

    def write(self, pcm: bytes, sample_rate: int = 24000) -> None:
        self.writes.append(time.monotonic())

    def flush(self) -> None:
        pass


def first_after(times: list[float], since: float) -> float | None:
    return next((t for t in times if t > since), None)


async def run_turns() -> list[float]:
    config = EmulatorConfig(
        silence_duration_ms=SILENCE_MS, reply_delay_s=THINKING_S, record=False,
        scenario=Scenario.from_mapping({"name": "bench", "default_reply": "Yes."}))
    async with Emulator(config) as emulator:
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key="bench", endpoint=emulator.url),
            model="gemini-live-2.5-flash-preview")
        async with ResilientSession(model) as session:
            await session.wait_live()
            source, speaker = PacedSpeech(), TimedSpeaker()
            controller = await start_audio_conversation(session, source=source, sink=speaker)
            deadline = time.monotonic() + (TURNS + 1) * (SPEECH_S + PAUSE_S) + 5
            while len(source.ends) <= TURNS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(SILENCE_MS / 1000 + THINKING_S + 0.5)  # the last reply
            await controller.stop()
    latencies = []
    for end in source.ends[1:TURNS + 1]:  # the first turn warms the connection up
        first = first_after(speaker.writes, end)
        if first is not None and first - end < SPEECH_S + PAUSE_S:
            latencies.append(first - end)
    return latencies


def test_voice_latency_agent_share() -> None:
    latencies = asyncio.run(run_turns())
    model_s = SILENCE_MS / 1000 + THINKING_S
    assert len(latencies) >= TURNS * 0.8, f"only {len(latencies)} replies of {TURNS}"
    total = np.array(latencies) * 1000
    share = total - model_s * 1000
    rows = [
        ("end of speech to first reply audio, p50", np.percentile(total, 50), ""),
        ("end of speech to first reply audio, p99", np.percentile(total, 99), ""),
        ("  of which the model (silence + thinking)", model_s * 1000, ""),
        ("agent's share, p50", np.percentile(share, 50), f"< {GOAL_MS:.0f} ms"),
        ("agent's share, p99", np.percentile(share, 99), f"< {GOAL_MS:.0f} ms"),
        ("agent's share, max", share.max(), ""),
    ]
    print(f"\n\nVoice latency against the emulator ({len(latencies)} turns)")
    print(f"{'measure':<46}{'ms':>10}{'goal':>12}{'met':>6}")
    for name, value, goal in rows:
        met = "" if not goal else ("yes" if value < GOAL_MS else "NO")
        print(f"{name:<46}{value:>10.1f}{goal:>12}{met:>6}")
