"""Echo cancellation benchmark: ERLE, double talk, CPU beside the library alone, and the real
daemon's replies and barge-ins in a simulated room.

Run with ``python -m pytest -s tests/bench/test_bench_aec.py``. Prints tables; asserts nothing
about timing.

1. Echo return loss enhancement after convergence (the last 4 of 8 s) in the simulated room
   (tests/support/room.py's impulse response, 12 ms direct path, RT60 0.25 s), for the
   emulator's voice and a broadband speech-like far end, with noise suppression off and
   moderate. Goal: >= 30 dB.
2. Double talk: a person (the demo's speech) over the model's echo; the near-end speech's SNR
   at the mic (speech over echo) and after AEC (the output's projection on the speech over
   the rest of the output), and how much of the speech's level the output keeps.
3. CPU per second of audio of `EchoCancellingSource` (AEC3 + NS moderate, 40 ms chunks, the
   reference read from its tap, a fresh start per reply) beside ``pywebrtc_audio.AudioProcessor``
   alone on the same frames. Goal: <= 1.5x.
4. The daemon in the room against the emulator, 20 quiet replies and 20 barge-ins with
   ``aec``, 20 quiet replies with ``none``: replies cut short by the model's own voice (goal:
   0 with aec) and barge-ins the emulator detected within 1 s (goal: 20 of 20).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent.emulator.server import Emulator
from agent.emulator.speech import synth_voice
from agent.media.audio.aec import EchoCancellingSource, EchoSettings, make_processor
from agent.media.audio.reference import ReferenceTap
from tests.support import wake_audio as wa
from tests.support.barge_in import emulator_config, run_room
from tests.support.offline_aec import CHUNK, RATE, Chunks, cancel
from tests.support.room import broadband_voice, room_impulse_response

pytest.importorskip("pywebrtc_audio")

Floats = npt.NDArray[np.float64]


def db(x: Floats | npt.NDArray[np.int16]) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-3))


def emulator_voice(seconds: float) -> Floats:
    pcm = synth_voice(round(seconds * RATE), RATE, 140.0, 0.3)
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def room_echo(far: Floats) -> Floats:
    echo = np.convolve(far, room_impulse_response())[: far.size]
    return np.concatenate([np.zeros(480), echo])[: far.size]  # 30 ms of device latency


def output_lag(out: Floats, said: Floats, start: int, reach: int = 800) -> int:
    """Samples the canceller's output lags its input by, where it holds ``said``."""
    window = out[start - reach : start + said.size + reach]
    corr = np.correlate(window, said, mode="valid")
    return int(np.argmax(np.abs(corr))) - reach


def test_bench_erle_and_double_talk() -> None:
    noise = np.random.default_rng(5).standard_normal(8 * RATE) * 10  # about -70 dBFS
    print("\n| far end | NS | ERLE after convergence (dB) |")
    print("|---|---|---|")
    for name, make in (("emulator voice", emulator_voice), ("broadband voice", broadband_voice)):
        far = make(8.0)
        echo = room_echo(far)
        for ns in ("off", "moderate"):
            out, _ = cancel(far, echo + noise, EchoSettings(delay_ms=0, noise_suppression=ns))
            tail = slice(4 * RATE, out.size)
            print(f"| {name} | {ns} | {db(echo[tail]) - db(out[tail]):.1f} |")
    # double talk: the person's speech over the model's echo, after 4 s of echo alone
    far = emulator_voice(8.0)
    echo = room_echo(far)
    near = np.zeros(far.size)
    speech = wa.speech()[round(5.2 * RATE) : round(7.0 * RATE)] * 32767 * 0.5
    near[5 * RATE : 5 * RATE + speech.size] = speech
    talk = slice(5 * RATE, 5 * RATE + speech.size)
    print("\n| double talk | NS | near-end SNR at the mic (dB) | after AEC (dB) "
          "| near-end level kept (dB) |")
    print("|---|---|---|---|---|")
    for ns in ("off", "moderate"):
        out, _ = cancel(far, echo + near + noise, EchoSettings(delay_ms=0, noise_suppression=ns))
        # the speech in the output is its projection on the speech (found where the output,
        # a few ms behind its input, holds it); the rest is echo and noise
        said = near[talk]
        lag = output_lag(out.astype(np.float64), said, talk.start)
        heard = out[talk.start + lag : talk.stop + lag].astype(np.float64)
        kept = float(np.dot(heard, said) / np.dot(said, said))
        rest = heard - kept * said
        print(f"| emulator voice + demo speech | {ns} | {db(said) - db(echo[talk]):.1f} "
              f"| {db(kept * said) - db(rest):.1f} | {20 * np.log10(max(kept, 1e-6)):.1f} |")


def test_bench_cpu_beside_the_library() -> None:
    seconds = 30.0
    far = broadband_voice(seconds)
    mic = np.clip(room_echo(far) + broadband_voice(seconds, seed=3) * 0.3, -32768, 32767)
    f16, m16 = far.astype(np.int16), mic.astype(np.int16)
    settings = EchoSettings(delay_ms=0, noise_suppression="moderate")
    rounds: dict[str, list[float]] = {"ours": [], "library": []}
    for _ in range(3):  # alternate, so both see the same machine
        tap = ReferenceTap(RATE)
        aec = EchoCancellingSource(Chunks(), tap, settings)
        far_chunks = [f16[i : i + CHUNK].tobytes() for i in range(0, f16.size, CHUNK)]
        mic_chunks = [m16[i : i + CHUNK].tobytes() for i in range(0, m16.size, CHUNK)]
        start = time.process_time()
        for fc, mc in zip(far_chunks, mic_chunks, strict=True):
            tap.push(fc)
            aec.process(mc)
        rounds["ours"].append((time.process_time() - start) / seconds)
        lib = make_processor(settings)
        start = time.process_time()
        for i in range(0, m16.size, CHUNK):
            lib.process(m16[i : i + CHUNK], f16[i : i + CHUNK])
        rounds["library"].append((time.process_time() - start) / seconds)
    ours, lib_cpu = min(rounds["ours"]), min(rounds["library"])
    print("\n| path (AEC3 + NS moderate, 40 ms chunks) | CPU per second of audio | of one core |")
    print("|---|---|---|")
    print(f"| EchoCancellingSource (tap, pairing, fresh start per reply) | {ours * 1000:.1f} ms "
          f"| {ours * 100:.2f} % |")
    print(f"| pywebrtc_audio.AudioProcessor alone | {lib_cpu * 1000:.1f} ms "
          f"| {lib_cpu * 100:.2f} % |")
    print(f"| ratio | {ours / lib_cpu:.2f}x | goal <= 1.5x |")


def test_bench_daemon_replies_and_barge_ins() -> None:
    async def run(echo: str, plan: str) -> tuple[int, int, int, list[float], int]:
        async with Emulator(emulator_config()) as emulator:
            with tempfile.TemporaryDirectory() as tmp:
                o = await run_room(emulator, Path(tmp), echo, plan)
        return o.quiet, o.self_interrupted, o.barge_detected, o.barge_latencies, o.no_reply

    quiet_a, self_a, barge_a, lat_a, lost_a = asyncio.run(run("aec", "qb" * 20))
    quiet_n, self_n, _, _, lost_n = asyncio.run(run("none", "q" * 20))
    heard = sorted(t for t in lat_a if t != float("inf"))
    print("\n| echo | replies | cut short by the model's own voice | barge-ins detected <= 1 s "
          "| barge-in latency p50 / max (s) | turns with no reply in 10 s |")
    print("|---|---|---|---|---|---|")
    p50 = f"{heard[len(heard) // 2]:.2f} / {heard[-1]:.2f}" if heard else "-"
    barged = len(lat_a)
    print(f"| aec | {quiet_a} quiet + {barged} barged in | {self_a} | {barge_a} of {barged} "
          f"| {p50} | {lost_a} |")
    print(f"| none | {quiet_n} quiet | {self_n} | - | - | {lost_n} |")
