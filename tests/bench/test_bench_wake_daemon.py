"""`edge-agent run` listening for a wake word, measured end to end against `always` mode.

The real daemon reads the virtual ALSA mic through PyAudio (16 kHz mono S16, 40 ms reads) and
talks to this process's emulator over a real WebSocket; the camera is a 1 FPS test pattern
that follows the conversation (``listen.camera = "conversation"``). Run with
``python -m pytest -s tests/bench/test_bench_wake_daemon.py``; prints three tables.

1. Wake latency: a feed with the four recordings of tests/data/wakeword said ``WAKES`` times,
   a few seconds apart, so that each conversation times out (1 s) before the next phrase. The
   emulator stamps each realtimeInput audio frame on arrival; the latency of a wake is the
   arrival of the first frame after it minus the moment the phrase ended in the room. "Phrase
   end" is `wake_audio.phrase_end_s` (the last 20 ms within 25 dB of the loudest); the room's
   clock is the mic's: the virtual mic writes each 40 ms block when its last sample would have
   been spoken, as a sound card hands over a period, so sample ``n`` was spoken at
   ``start + n / 16000``, with ``start`` taken from the least late block written. Beside it,
   the detector's own share, from the same feed run through the detector offline: the audio
   after the phrase end that it needed to decide (negative when it decides on the phrase's
   trailing breath), and the wait for the end of the 40 ms chunk holding that decision.
2. What leaves the device during room speech without a wake word (`wake_audio.room_blocks`
   with no recording in it): audio bytes and camera frames at the emulator in ``wake_word``
   mode (listening for one wake word, the default, and for two) and in ``always`` mode on the
   same feed, counted over the measured window, scaled to 10 minutes and to an idle hour, and
   the tokens that hour costs (25 audio tokens per second streamed, 258 per image). The feed
   must be real time (a paced pipe): the conversation timeout, the camera's interval and the
   capture's drop-oldest queue all run on the clock, so a faster feed would change what is
   measured. Each round therefore streams ``MEASURE_S`` plus warm-up, and the counts are scaled.
3. The daemon's CPU (% of one core, all threads, /proc/PID/stat, and per thread) and memory
   (smaps_rollup), with tight_loop.py's readers, over ``MEASURE_S`` after ``WARMUP_S``, in the
   same rounds: ``ROUNDS`` of each mode, alternating; medians. The camera sends in ``always``
   mode and not while asleep, as configured: that difference is part of what is compared.

Asserted (deterministic): every phrase wakes the daemon once and the offline detector once, no
audio from before a phrase's recording is sent, and during the room feed (on which the offline
detector hears no wake word) ``wake_word`` mode sends no audio and no camera frame.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.recording import SessionRecording
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.media.audio.wakeword import MicroWakeWordDetector
from tests.bench.tight_loop import cpu_seconds, memory_mb, thread_cpu
from tests.support import wake_audio as wa
from tests.support.daemon_process import Agent, start_agent, stop_agent

WAKES = int(os.environ.get("WAKE_BENCH_WAKES", "20"))
ROUNDS = int(os.environ.get("WAKE_BENCH_ROUNDS", "2"))
WARMUP_S = 3.0
MEASURE_S = 10.0
CHUNK = 1280  # 40 ms of 16 kHz mono S16: the capture's read size, and the feed's block
WAKE_WORDS = ("okay_nabu", "hey_jarvis")
PRE_ROLL_MS = 300
TIMEOUT_S = 1.0
GAP_S = 3.2  # after each phrase: the wake, a short reply, the timeout, and a margin
AUDIO_TOKENS_PER_S = 25  # the figure for streamed audio
IMAGE_TOKENS = 258  # per camera frame (the emulator's figure too)


def config_text(endpoint: str, mode: str, level: str,
                wake_words: tuple[str, ...] = WAKE_WORDS) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "vmic"
dc_block = false  # the samples sent are the feed's, so a frame can be found in it
echo = "none"

[audio.output]
device = "null"

[listen]
mode = "{mode}"
wake_words = {list(wake_words)!r}
pre_roll_ms = {PRE_ROLL_MS}
conversation_timeout_s = {TIMEOUT_S}
camera = "conversation"

[camera]
source = "test-pattern"
interval_s = 1.0

[gpio]
pin_factory = "mock"

[logging]
level = "{level}"
format = "json"
""".replace("'", '"')


@dataclass(frozen=True)
class Phrase:
    name: str
    start: int  # first sample of the recording in the feed
    end: int  # the phrase's end (phrase_end_s) in the feed, in samples


def wake_feed() -> tuple[npt.NDArray[np.float64], list[Phrase]]:
    """``WAKES`` phrases, the four recordings in turn, each followed by ``GAP_S`` of quiet,
    in white noise 40 dB below the speech."""
    names = [n for pair in zip(*wa.RECORDINGS.values(), strict=True) for n in pair]
    parts, phrases, at = [wa.silence(1.0)], [], wa.RATE
    for i in range(WAKES):
        name = names[i % len(names)]
        x = wa.recording(name)
        phrases.append(Phrase(name, at, at + round(wa.phrase_end_s(x) * wa.RATE)))
        parts += [x, wa.silence(GAP_S)]
        at += len(x) + round(GAP_S * wa.RATE)
    return wa.with_noise(np.concatenate(parts), 40, seed=2), phrases


def offline_detections(feed: bytes) -> list[float]:
    """Where (seconds into the feed) the detector, fed as the daemon feeds it, decides."""
    detector = MicroWakeWordDetector(list(WAKE_WORDS))
    try:
        return [hit.audio_s for c in wa.chunks(feed) if (hit := detector.detect(c))]
    finally:
        detector.close()


def room_feed(seconds: float) -> bytes:
    """Room sound with no wake phrase in it: speech at other speeds and levels, in noise,
    noise, hum, silence."""
    blocks = wa.room_blocks(tuple(wa.RECORDINGS), seconds, seed=23)
    return wa.pcm(np.concatenate(list(blocks))[: round(seconds * wa.RATE)])


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    scenario = Scenario.from_mapping({"name": "wake-bench", "default_reply": "Yes?"})
    async with Emulator(EmulatorConfig(scenario=scenario)) as running:
        yield running


@dataclass
class Daemon:
    agent: Agent
    mic: wa.DaemonMic
    session: SessionRecording


def write_config(root: Path, text: str) -> Path:
    root.mkdir()
    config = root / "agent.toml"
    config.write_text(text)
    return config


async def start_daemon(emulator: Emulator, root: Path, mode: str, level: str,
                       wake_words: tuple[str, ...] = WAKE_WORDS) -> Daemon:
    config = write_config(root, config_text(emulator.url, mode, level, wake_words))
    devices = wa.DaemonMic(root)
    before = set(emulator.recordings.sessions)
    agent = await start_agent(config, root, pass_fds=devices.fds, **devices.env)
    await agent.wait_for(lambda: any("READY=1" in n for _, n in agent.notes), "READY=1")
    await agent.wait_for(lambda: set(emulator.recordings.sessions) - before, "a session")
    (new,) = set(emulator.recordings.sessions) - before
    return Daemon(agent, devices, emulator.recordings.sessions[new])


async def stop_daemon(daemon: Daemon) -> None:
    code = await stop_agent(daemon.agent)
    daemon.mic.close()
    assert code == 0, daemon.agent.logs[-10:]


def feed_start(daemon: Daemon) -> float:
    """The monotonic time the feed's first sample was spoken: each block is written once its
    last sample is due, never before, so the least late block tells the start best."""
    return min(t - end / (2 * wa.RATE) for end, t in daemon.mic.mic.written_at)


# -- 1. latency -----------------------------------------------------------------------------


@dataclass
class Latency:
    total_ms: list[float]
    decision_ms: list[float]  # audio after the phrase end the detector needed
    chunk_wait_ms: list[float]  # from the decision to the end of its 40 ms chunk
    frames_asleep: int


async def measure_latency(emulator: Emulator, root: Path) -> Latency:
    signal, phrases = wake_feed()
    feed = wa.pcm(signal)
    decided = offline_detections(feed)
    assert len(decided) == WAKES, f"offline: {len(decided)} detections of {WAKES} phrases"
    daemon = await start_daemon(emulator, root / "latency", "wake_word", "info")
    try:
        daemon.mic.mic.play(feed, block_bytes=CHUNK, bytes_per_second=2 * wa.RATE)
        await asyncio.to_thread(daemon.mic.mic.wait, len(feed) / 2 / wa.RATE + 30)
        await asyncio.sleep(TIMEOUT_S + 1.0)
    finally:
        await stop_daemon(daemon)
    logs = daemon.agent.logs
    wakes = [e for e in logs if e.get("event") == "conversation.wake"]
    assert len(wakes) == WAKES, f"{len(wakes)} wakes for {WAKES} phrases"
    start = feed_start(daemon)
    audio = daemon.session.audio
    bursts = [i for i in range(len(audio)) if i == 0 or audio[i].t - audio[i - 1].t > 0.5]
    assert len(bursts) == WAKES, f"{len(bursts)} stretches of audio sent for {WAKES} wakes"
    rows = np.frombuffer(feed, "<i2")[: len(feed) // CHUNK * 640].reshape(-1, 640)
    totals, decisions, waits = [], [], []
    for phrase, first, at_s in zip(phrases, bursts, decided, strict=True):
        head = audio[first].samples
        (where,) = np.nonzero((rows == head).all(axis=1)) if len(head) == 640 else ([],)
        assert len(where) == 1, "the first frame of a wake is one chunk of the feed"
        assert phrase.start <= where[0] * 640 <= phrase.end, (
            f"{phrase.name}: audio from before the phrase was sent")
        end_s = phrase.end / wa.RATE
        totals.append(1000 * (audio[first].t - (start + end_s)))
        decisions.append(1000 * (at_s - end_s))
        waits.append(1000 * (np.ceil(at_s / 0.04 - 1e-9) * 0.04 - at_s))
    # Camera frames outside the conversations: from each wake's first audio to 1.5 s after
    # its last (the timeout, plus a frame already on its way).
    ends = [*bursts[1:], len(audio)]
    spans = [(audio[b].t - 0.1, audio[e - 1].t + TIMEOUT_S + 0.5) for b, e in zip(bursts, ends,
                                                                                  strict=True)]
    asleep = [f for f in daemon.session.video if not any(a <= f.t <= b for a, b in spans)]
    return Latency(totals, decisions, waits, len(asleep))


def print_latency(result: Latency) -> None:
    def stats(values: list[float]) -> str:
        p50, p99 = np.percentile(values, [50, 99])
        return f"{p50:>8.0f}{p99:>8.0f}{max(values):>8.0f}{min(values):>8.0f}"

    rest = [t - d - w for t, d, w in zip(result.total_ms, result.decision_ms,
                                         result.chunk_wait_ms, strict=True)]
    print(f"\n== end of the wake phrase to the first audio frame at the emulator "
          f"({len(result.total_ms)} wakes, real time, pre-roll {PRE_ROLL_MS} ms)")
    print(f"{'ms':<52}{'p50':>8}{'p99':>8}{'max':>8}{'min':>8}")
    print(f"{'phrase end -> first frame received (goal: report)':<52}{stats(result.total_ms)}")
    print(f"{'  detector: audio after phrase end to decide':<52}{stats(result.decision_ms)}")
    print(f"{'  waiting for the end of that 40 ms chunk':<52}{stats(result.chunk_wait_ms)}")
    print(f"{'  capture, detection, send, loopback, emulator':<52}{stats(rest)}")
    print(f"camera frames sent outside the conversations: {result.frames_asleep} (goal 0)")


# -- 2 and 3. room speech, wake_word beside always -------------------------------------------


# Each mode: its label, listen.mode and wake words. One wake word is the default config; two
# are what the latency run listens for (each is one more network on every 10 ms window).
MODES = (("wake_word, 1 word", "wake_word", ("okay_nabu",)),
         ("wake_word, 2 words", "wake_word", WAKE_WORDS),
         ("always", "always", ()))


@dataclass
class Round:
    mode: str
    cpu_percent: float
    rss: float
    uss: float
    audio_bytes: int  # realtimeInput audio at the emulator in the measured window
    frames: int  # camera frames at the emulator in the window
    window_s: float
    audio_bytes_all: int  # ... and from the start to the window's end
    frames_all: int
    threads: dict[str, float]


def sent(session: SessionRecording) -> tuple[int, int]:
    return 2 * sum(len(a.samples) for a in session.audio), len(session.video)


async def measure_round(emulator: Emulator, root: Path, mode: tuple[str, str, tuple[str, ...]],
                        feed: bytes) -> Round:
    label, listen_mode, words = mode
    daemon = await start_daemon(emulator, root, listen_mode, "warning", words or WAKE_WORDS)
    pid, clock = daemon.agent.process.pid, asyncio.get_running_loop().time
    try:
        daemon.mic.mic.play(feed, block_bytes=CHUNK, bytes_per_second=2 * wa.RATE)
        await asyncio.sleep(WARMUP_S)
        cpu0, threads0, wall0, sent0 = cpu_seconds(pid), thread_cpu(pid), clock(), sent(
            daemon.session)
        await asyncio.sleep(MEASURE_S)
        cpu1, threads1, wall1, sent1 = cpu_seconds(pid), thread_cpu(pid), clock(), sent(
            daemon.session)
        memory = memory_mb(pid)
    finally:
        await stop_daemon(daemon)
    elapsed = wall1 - wall0
    return Round(
        mode=label, cpu_percent=100 * (cpu1 - cpu0) / elapsed, rss=memory["rss"],
        uss=memory["uss"], audio_bytes=sent1[0] - sent0[0], frames=sent1[1] - sent0[1],
        window_s=elapsed, audio_bytes_all=sent1[0], frames_all=sent1[1],
        threads={n: 100 * (s - threads0.get(n, 0.0)) / elapsed for n, s in threads1.items()},
    )  # fmt: skip


def print_rounds(rounds: list[Round]) -> None:
    modes = [label for label, _, _ in MODES]
    by = {m: [r for r in rounds if r.mode == m] for m in modes}

    def median(mode: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in by[mode])

    def per_s(mode: str, field: str) -> float:
        return sum(getattr(r, field) for r in by[mode]) / sum(r.window_s for r in by[mode])

    def table(title: str, rows: list[tuple[str, list[str], str]]) -> None:
        print(title)
        print(f"{'measure':<40}" + "".join(f"{m:>20}" for m in modes) + "   goal (wake_word)")
        for label, values, goal in rows:
            print(f"{label:<40}" + "".join(f"{v:>20}" for v in values) + f"   {goal}")

    window = sum(r.window_s for r in by[modes[0]])
    audio_s = {m: per_s(m, "audio_bytes") / 2 / wa.RATE for m in modes}  # per second
    frames = {m: per_s(m, "frames") for m in modes}
    tokens = {m: 3600 * (audio_s[m] * AUDIO_TOKENS_PER_S + frames[m] * IMAGE_TOKENS)
              for m in modes}
    table(f"\n== room speech without the wake word: what leaves the device (scaled from "
          f"{window:.0f} s of real-time feed per mode)", [
        ("audio bytes sent per 10 minutes", [f"{per_s(m, 'audio_bytes') * 600:,.0f}"
                                             for m in modes], "0"),
        ("audio streamed per idle hour, s", [f"{audio_s[m] * 3600:,.0f}" for m in modes], "0"),
        ("audio tokens per idle hour (25/s)",
         [f"{audio_s[m] * 3600 * AUDIO_TOKENS_PER_S:,.0f}" for m in modes], "0"),
        ("camera frames per idle hour", [f"{frames[m] * 3600:,.0f}" for m in modes], "0"),
        ("image tokens per idle hour (258 each)",
         [f"{frames[m] * 3600 * IMAGE_TOKENS:,.0f}" for m in modes], "0"),
        ("tokens per idle hour", [f"{tokens[m]:,.0f}" for m in modes], "0"),
    ])
    saved = tokens["always"] - tokens[modes[0]]
    print(f"an idle hour listening for the wake word saves {saved:,.0f} tokens against always")

    cpu = {m: median(m, "cpu_percent") for m in modes}
    rss = {m: median(m, "rss") for m in modes}
    table(f"\n== the whole daemon, median of {ROUNDS} alternating rounds "
          f"({MEASURE_S:.0f} s each after {WARMUP_S:.0f} s)", [
        ("CPU, % of one core", [f"{cpu[m]:.2f}" for m in modes],
         "<= 2 %: " + ", ".join(f"{'met' if cpu[m] <= 2 else 'NOT met'}" for m in modes[:2])),
        ("  ratio to always", [f"{cpu[m] / cpu['always']:.2f}x" for m in modes], ""),
        ("RSS, MB", [f"{rss[m]:.1f}" for m in modes],
         "<= 70 MB: " + ", ".join(f"{'met' if rss[m] <= 70 else 'NOT met'}" for m in modes[:2])),
        ("USS, MB", [f"{median(m, 'uss'):.1f}" for m in modes], ""),
    ])
    print("rounds (CPU %):", {m: [round(r.cpu_percent, 2) for r in by[m]] for m in modes})
    names = {n for r in rounds for n in r.threads}
    shares = {n: [statistics.median(r.threads.get(n, 0.0) for r in by[m]) for m in modes]
              for n in names}
    print("CPU by thread, % of one core (" + " / ".join(modes) + "):")
    for name, values in sorted(shares.items(), key=lambda item: -item[1][0])[:6]:
        print(f"  {name:<38}" + "".join(f"{v:>20.2f}" for v in values))


async def test_wake_word_daemon_latency_traffic_and_cost(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    latency = await measure_latency(emulator, tmp_path)
    feed = room_feed(WARMUP_S + MEASURE_S + 10)
    assert not offline_detections(feed), "the room feed has no wake word in it"
    rounds = [await measure_round(emulator, tmp_path / f"{mode[1]}-{len(mode[2])}-{i}", mode, feed)
              for i in range(ROUNDS) for mode in MODES]
    print_latency(latency)
    print_rounds(rounds)
    asleep = [r for r in rounds if r.mode != "always"]
    assert all(r.audio_bytes_all == 0 for r in asleep), [r.audio_bytes_all for r in asleep]
    assert all(r.frames_all == 0 for r in asleep), [r.frames_all for r in asleep]
    assert latency.frames_asleep == 0
    assert all(r.audio_bytes > 0 for r in rounds if r.mode == "always")
