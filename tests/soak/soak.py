"""The soak: ``edge-agent run`` against the emulator, with faults, for minutes, watched from
outside through /proc.

The daemon runs as its own process (a simulated mic reading a WAV with a spoken burst every
4 s, a null speaker, a test-pattern camera at 1 FPS, mock GPIO with a lamp) against this
process's emulator, which answers every spoken turn with a call of the lamp tool and a short
reply, ends each connection after 2 minutes (goAway), and injects a fault every 30 s, cycling
through drops, goAways, refused and delayed handshakes, stalls, malformed and unknown frames,
an oversized frame, closes with 1011, repeated and cancelled tool calls. Every 30 s it samples
the daemon's RSS, open fds and threads (and, for information, its own RSS: the emulator's).

The verdict: after a warm-up of two samples (the first connection, turns and faults), the
baseline is the median of the next three samples and the end the median of the last three. The
run fails if RSS grew by more than 2 MB, if fds or threads grew at all, or if the daemon
exited. A median of three ignores one sample caught in the middle of a reply or a reconnect; a
baseline taken after the warm-up leaves out what a process allocates once (caches, the
allocator's arenas, the first worker thread). A run too short for both windows is not judged
on growth.

    python tests/soak/soak.py                          # EDGE_AGENT_SOAK_S s (default 600)
    python tests/soak/soak.py --seconds 60 --interval 5

Exit status 0 when it passes, 1 when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from agent.emulator import Emulator, EmulatorConfig, Fault, Scenario, Trigger

RSS_GROWTH_LIMIT_KB = 2 * 1024
WARMUP_SAMPLES = 2
WINDOW = 3  # samples in the baseline and in the end window

SCENARIO = {
    "name": "soak",
    "turn": [
        {
            "text": "spoken",  # every spoken turn ("spoken turn N")
            "call": [{"name": "set_lamp", "args": {"action": "toggle"}}],
            "reply": "Done.",
        }
    ],
}

Arm = Callable[[Emulator], None]


def _now(fault: Fault) -> Arm:
    return lambda emulator: emulator.inject(fault)


def _next_connection(fault: Fault) -> Arm:
    """A handshake fault for the next connection, and a drop of this one to make it come."""

    def arm(emulator: Emulator) -> None:
        emulator.inject(fault)
        emulator.inject(Fault.drop())

    return arm


FAULTS: list[tuple[str, Arm]] = [
    ("drop mid-reply", _now(Fault.drop(at=Trigger.REPLY))),
    ("goAway 2 s", _now(Fault.go_away(2.0))),
    ("handshake refused 503", _next_connection(Fault.refuse_handshake(503))),
    ("stall 3 s", _now(Fault.stall(3.0))),
    ("malformed frame", _now(Fault.malformed_json())),
    ("repeated tool call", _now(Fault.repeat_tool_call())),
    ("close 1011", _now(Fault.close(1011, "Internal error encountered."))),
    ("unknown message", _now(Fault.unknown_message())),
    ("oversized frame", _now(Fault.oversized_frame())),
    ("handshake delayed 3 s", _next_connection(Fault.delay_handshake(3.0))),
    ("cancelled tool call", _now(Fault.cancel_tool_call(0.2))),
]


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the daemon (and the emulator's counters) ``t`` seconds in."""

    t: float
    rss_kb: int
    fds: int
    threads: int
    connections: int
    faults: int
    replies: int
    tool_calls: int
    emulator_rss_kb: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Growth between the baseline and the end windows (None: too few samples to judge)."""

    rss_kb: float | None
    fds: float | None
    threads: float | None
    problems: tuple[str, ...]


def judge(samples: Sequence[Sample], daemon_exit: int | None) -> Verdict:
    """Compare the median of the end window with the median of the baseline window."""
    problems: list[str] = []
    if daemon_exit is not None:
        problems.append(f"the daemon exited with {daemon_exit} during the soak")
    baseline = samples[WARMUP_SAMPLES : WARMUP_SAMPLES + WINDOW]
    end = samples[-WINDOW:]
    if len(samples) < WARMUP_SAMPLES + 2 * WINDOW:
        return Verdict(None, None, None, tuple(problems))

    def growth(field: Callable[[Sample], float]) -> float:
        return statistics.median(map(field, end)) - statistics.median(map(field, baseline))

    rss, fds, threads = (growth(lambda s: s.rss_kb), growth(lambda s: s.fds),
                         growth(lambda s: s.threads))  # fmt: skip
    if rss > RSS_GROWTH_LIMIT_KB:
        problems.append(f"RSS grew by {rss / 1024:.1f} MB (limit {RSS_GROWTH_LIMIT_KB // 1024} MB)")
    if fds > 0:
        problems.append(f"open fds grew by {fds:g}")
    if threads > 0:
        problems.append(f"threads grew by {threads:g}")
    return Verdict(rss, fds, threads, tuple(problems))


# --- /proc ---------------------------------------------------------------------------------


def _status(pid: int | str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _kb(value: str) -> int:
    return int(value.split()[0])


def sample(pid: int, t: float, emulator: Emulator) -> Sample:
    """RSS, fds and threads of ``pid``; the emulator's counters; this process's RSS."""
    status = _status(pid)
    stats = emulator.stats
    return Sample(
        t=t,
        rss_kb=_kb(status["VmRSS"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
        connections=stats.connections,
        faults=stats.faults,
        replies=stats.replies,
        tool_calls=stats.tool_calls,
        emulator_rss_kb=_kb(_status("self")["VmRSS"]),
    )


# --- the daemon ----------------------------------------------------------------------------


def write_mic(path: Path, seconds: float) -> None:
    """16 kHz mono: a voice-like 0.6 s burst every 4 s (a spoken turn each)."""
    rate = 16_000
    t = np.arange(int(0.6 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 0.6)
    period = np.concatenate([burst, np.zeros(int(3.4 * rate))])
    pcm = (np.tile(period, int(np.ceil(seconds / 4.0))) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def config_text(endpoint: str, mic: Path) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "wav:{mic}"
echo = "none"

[audio.output]
device = "null"

[camera]
source = "test-pattern"
width = 320
height = 240
interval_s = 1.0

[gpio]
pin_factory = "mock"

[[tools]]
name = "set_lamp"
description = "Switch the lamp."
kind = "digital_output"
pin = 17

[logging]
level = "warning"
format = "json"

[health]
watchdog = false
"""


async def stop_daemon(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, then SIGKILL after 15 s; the exit status."""
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


def count_errors(log: Path) -> int:
    """The daemon's log lines at error level (its format is JSON)."""
    errors = 0
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            errors += isinstance(entry, dict) and entry.get("level") in ("error", "critical")
    return errors


# --- the run -------------------------------------------------------------------------------


def _cpu_s(who: int) -> float:
    """User and system CPU seconds of this process (RUSAGE_SELF) or its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def print_row(s: Sample) -> None:
    print(f"{s.t:>6.0f}{s.rss_kb / 1024:>9.1f}{s.fds:>6}{s.threads:>9}{s.connections:>13}"
          f"{s.faults:>8}{s.replies:>9}{s.tool_calls:>12}{s.emulator_rss_kb / 1024:>17.1f}",
          flush=True)  # fmt: skip


async def soak(seconds: float, interval: float, fault_every: float) -> int:
    print(f"soak: edge-agent run against the emulator with a fault every {fault_every:g} s, "
          f"{seconds:g} s, a sample every {interval:g} s", flush=True)  # fmt: skip
    print(f"{'t s':>6}{'RSS MB':>9}{'fds':>6}{'threads':>9}{'connections':>13}{'faults':>8}"
          f"{'replies':>9}{'tool calls':>12}{'emulator RSS MB':>17}", flush=True)  # fmt: skip
    config = EmulatorConfig(
        scenario=Scenario.from_mapping(SCENARIO), connection_lifetime_s=120.0,
        go_away_before_s=10.0, record=False,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with tempfile.TemporaryDirectory(prefix="edge-agent-soak-") as tmp:
        root = Path(tmp)
        write_mic(root / "mic.wav", seconds + 120)
        log = root / "daemon.log"
        async with Emulator(config) as emulator:
            (root / "agent.toml").write_text(config_text(emulator.url, root / "mic.wav"))
            environ = {k: v for k, v in os.environ.items()
                       if not k.startswith(("NOTIFY_", "WATCHDOG_"))}  # fmt: skip
            with log.open("wb") as stderr:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "agent.cli", "run", "--config", str(root / "agent.toml"),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=stderr, env=environ,
                )  # fmt: skip
            samples: list[Sample] = []
            exited: int | None = None
            started = time.monotonic()
            next_sample, next_fault, fault_index = interval, fault_every / 2, 0
            try:
                while not stop.is_set():
                    now = time.monotonic() - started
                    if process.returncode is not None:
                        exited = process.returncode
                        break
                    if now >= next_fault:
                        FAULTS[fault_index % len(FAULTS)][1](emulator)
                        fault_index += 1
                        next_fault += fault_every
                    if now >= next_sample:
                        samples.append(sample(process.pid, round(now), emulator))
                        print_row(samples[-1])
                        next_sample += interval
                    if now >= seconds:
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(next_sample, next_fault) - now):
                            await stop.wait()
            finally:
                status = await stop_daemon(process)
        if stop.is_set():
            print("soak: interrupted", flush=True)
            return 1
        errors = count_errors(log)
        reconnects = max(0, emulator.stats.connections - 1)
    verdict = judge(samples, exited)
    kinds = ", ".join(name for name, _ in FAULTS[: min(fault_index, len(FAULTS))])
    print(f"faults injected: {fault_index} ({kinds}); daemon log lines at error level: {errors};"
          f" daemon exit status on SIGTERM: {status}")  # fmt: skip
    elapsed = time.monotonic() - started
    daemon_cpu, emulator_cpu = _cpu_s(resource.RUSAGE_CHILDREN), _cpu_s(resource.RUSAGE_SELF)
    print(f"reconnects: {reconnects}; CPU in {elapsed:.0f} s: daemon {daemon_cpu:.1f} s, "
          f"emulator {emulator_cpu:.1f} s")  # fmt: skip
    if verdict.rss_kb is None:
        print("growth: too few samples to judge")
    else:
        assert verdict.fds is not None and verdict.threads is not None
        print(f"growth from the median of samples {WARMUP_SAMPLES + 1}-{WARMUP_SAMPLES + WINDOW}"
              f" to the median of the last {WINDOW}: RSS {verdict.rss_kb / 1024:+.2f} MB "
              f"(limit {RSS_GROWTH_LIMIT_KB / 1024:g}), fds {verdict.fds:+g}, "
              f"threads {verdict.threads:+g}")  # fmt: skip
    problems = list(verdict.problems)
    if exited is None and status != 0:
        problems.append(f"the daemon exited with {status} on SIGTERM")
    print("soak: " + ("FAILED: " + "; ".join(problems) if problems else "passed"), flush=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("EDGE_AGENT_SOAK_S", "600")))  # fmt: skip
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--fault-every", type=float, default=30.0, help="seconds between faults")
    args = parser.parse_args(argv)
    # the emulator's own log lines are not what the soak reports
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    return asyncio.run(soak(args.seconds, args.interval, args.fault_every))


if __name__ == "__main__":
    sys.exit(main())
