"""The tight loop, side by side: ``edge-agent run`` against the cookbook-style agent, and the
floor under both: the daemon's work done by its libraries alone (``floor_agent.py``).

All three get the same inputs, one after the other in alternating rounds: an I2S-format
microphone feed (48 kHz, 2 ch, S32, a voice-like burst every 4 s) on the virtual ALSA mic, a
folder of 1280x720 JPEG photos as the camera, a real-time virtual speaker at 24 kHz, and one
emulator over TLS (google-genai insists on wss://, and the real service is TLS too). The
daemon reads the raw device as it reads an I2S mic on a Pi and converts it itself; the cookbook
agent opens it through ALSA's ``plug`` at 16 kHz mono, as its ``default`` device does on a Pi,
so ALSA's conversion is part of its cost. The daemon streams with ``echo = "none"`` (the
cookbook agent has no echo handling either). Each trusts the system's CAs as it would in
production, plus the emulator's: the daemon through a hashed CA directory (``SSL_CERT_DIR``,
as ``/etc/ssl/certs`` is on a device), the cookbook agent through Python's default context
with the emulator's certificate added.

The floor agent reads the raw device in 40 ms blocks as the daemon does, converts with numpy and
soxr, fits and encodes the photos with simplejpeg and numpy, and sends over websockets on uvloop;
it has none of the daemon's checks, reconnection, logging or tools, so the daemon's CPU and
memory above it are edge-agent's own, and a goal below it is a goal for the libraries.

Per process, from outside: CPU from ``/proc/PID/stat`` (all threads), RSS/PSS/USS from
``smaps_rollup``, wake-ups as context switches summed over every thread. The table gives the
median of the rounds (``TIGHT_LOOP_ROUNDS``, default 3) and the ratios daemon / cookbook and
daemon / floor.
Run by test_bench_tight_loop.py in a process of its own (the virtual sound devices must be
set up before PortAudio starts).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
from PIL import Image

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.media.audio.virtual_alsa import MIC_FD, SPEAKER_FD, VirtualAlsa, VirtualMic

ROUNDS = int(os.environ.get("TIGHT_LOOP_ROUNDS", "3"))
WARMUP_S = 5.0
MEASURE_S = 15.0
API_KEY = "bench-key"
I2S_BYTES_PER_S = 48_000 * 2 * 4
# Each reader's read size in bytes (see virtual_alsa.py: the feed is written in those blocks):
# the daemon reads 40 ms of the raw device, ALSA's plug reads 1024 frames' worth (64 ms).
DAEMON_BLOCK = 1920 * 8
COOKBOOK_BLOCK = 3072 * 8
TICKS = os.sysconf("SC_CLK_TCK")
AGENTS = ("daemon", "cookbook", "floor")
HERE = Path(__file__).parent


def i2s_feed(seconds: float) -> bytes:
    """48 kHz stereo S32: a 0.6 s voice-like burst every 4 s, the same on both channels."""
    rate = 48_000
    t = np.arange(int(0.6 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 0.6)
    period = np.concatenate([burst, np.zeros(int(3.4 * rate))])
    mono = (np.tile(period, int(np.ceil(seconds / 4.0))) * (2**31 - 1)).astype("<i4")
    return np.repeat(mono[:, None], 2, axis=1).tobytes()


def write_photos(folder: Path, count: int = 30) -> None:
    """Photo-like 1280x720 JPEGs: smooth gradients with texture, so the encoders work; more
    of them than a round shows, so no photo repeats (a camera never does)."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:720, 0:1280]
    for i in range(count):
        base = np.stack([(x + 40 * i) % 256, (y + 30 * i) % 256, (x + y) // 8 % 256], axis=-1)
        noise = rng.integers(-24, 24, size=base.shape)
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{i}.jpg", quality=90)


def daemon_config(endpoint: str, photos: Path) -> str:
    return f"""
[live]
backend = "gemini"
endpoint = "{endpoint}"

[audio]
input = "vmic"
mic = "inmp441"
echo = "none"

[audio.output]
device = "vspk"
rate = 24000

[camera]
source = "image-folder"
path = "{photos}"
width = 768
height = 576
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
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (the main thread is the event loop); threads that share a
    name are summed."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            head, _, rest = (task / "stat").read_text().rpartition(")")
        except OSError:
            continue  # the thread ended meanwhile
        name = "event loop" if task.name == str(pid) else head.partition("(")[2]
        fields = rest.split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def context_switches(pid: int) -> int:
    """Voluntary and involuntary switches of every thread: how often the process wakes."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) from smaps_rollup, in MB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0])
    return {
        "rss": values["Rss"] / 1024,
        "pss": values["Pss"] / 1024,
        "uss": (values["Private_Clean"] + values["Private_Dirty"]) / 1024,
    }


@dataclass
class Round:
    cpu_percent: float
    rss: float
    pss: float
    uss: float
    wakeups_per_s: float
    threads: int
    audio_frames_per_s: float
    video_frames: int
    speaker_s: float
    thread_percent: dict[str, float]


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def wait_for_line(stream: asyncio.StreamReader, text: str) -> None:
    async with asyncio.timeout(30):
        while text not in (await stream.readline()).decode():
            if stream.at_eof():
                raise RuntimeError(f"the agent ended before saying {text!r}")


async def wait_ready(notify: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(30):
        while "READY=1" not in (await loop.sock_recv(notify, 4096)).decode():
            pass


def system_cas_and(cert: Path, directory: Path) -> Path:
    """A hashed CA directory: the system's CAs (as ``update-ca-certificates`` keeps them) and
    ``cert`` under its subject hash, computed by OpenSSL itself."""
    directory.mkdir()
    system = Path(ssl.get_default_verify_paths().openssl_capath)
    for entry in system.iterdir():
        if entry.name[:8].isalnum() and entry.suffix[1:].isdigit():
            (directory / entry.name).symlink_to(entry.resolve())
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(cert)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    index = 0
    while (directory / f"{subject_hash}.{index}").exists():
        index += 1
    (directory / f"{subject_hash}.{index}").symlink_to(cert)
    return directory


class Bench:
    def __init__(self, root: Path, alsa: VirtualAlsa, emulator: Emulator) -> None:
        self.root = root
        self.alsa = alsa
        self.emulator = emulator
        self.photos = root / "photos"
        write_photos(self.photos)
        assert emulator.cert_path is not None
        self.cert = emulator.cert_path
        self.env = dict(os.environ, GEMINI_API_KEY=API_KEY)
        self.env.pop("SSL_CERT_FILE", None)
        self.env["SSL_CERT_DIR"] = str(system_cas_and(self.cert, root / "certs"))
        self.feed = i2s_feed(WARMUP_S + MEASURE_S + 30)

    async def start_daemon(self) -> asyncio.subprocess.Process:
        config = self.root / "agent.toml"
        config.write_text(daemon_config(self.emulator.url, self.photos))
        notify_path = self.root / "notify.sock"
        notify_path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(notify_path))
            notify.setblocking(False)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent.cli", "run", "--config", str(config),
                env=dict(self.env, NOTIFY_SOCKET=str(notify_path)),
                pass_fds=(MIC_FD, SPEAKER_FD),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            await wait_ready(notify)
        return process

    async def start_cookbook(self) -> asyncio.subprocess.Process:
        return await self._start_script(
            "cookbook_agent.py",
            self.emulator.url.replace("wss://", "https://"), str(self.cert), str(self.photos),
            "vmic_plug",
        )

    async def start_floor(self) -> asyncio.subprocess.Process:
        return await self._start_script("floor_agent.py", self.emulator.url, str(self.photos))

    async def _start_script(self, script: str, *args: str) -> asyncio.subprocess.Process:
        """Start an agent script of this folder; it is ready when it prints ``connected``."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / script), *args,
            env=self.env,
            pass_fds=(MIC_FD, SPEAKER_FD),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        await wait_for_line(process.stdout, "connected")
        return process

    async def round(self, name: str) -> Round:
        mic: VirtualMic = self.alsa.mic()
        block = COOKBOOK_BLOCK if name == "cookbook" else DAEMON_BLOCK
        mic.play(self.feed, block_bytes=block, bytes_per_second=I2S_BYTES_PER_S)
        speaker = self.alsa.speaker(bytes_per_second=24_000 * 2)
        start = {
            "daemon": self.start_daemon, "cookbook": self.start_cookbook, "floor": self.start_floor
        }[name]
        process = await start()
        try:
            await asyncio.sleep(WARMUP_S)
            stats = self.emulator.stats
            audio0, video0, speaker0 = stats.audio_frames, stats.video_frames, len(speaker.data)
            threads0 = thread_cpu(process.pid)
            cpu0, switches0, wall0 = (
                cpu_seconds(process.pid), context_switches(process.pid), time.monotonic()
            )
            await asyncio.sleep(MEASURE_S)
            cpu1, switches1, wall1 = (
                cpu_seconds(process.pid), context_switches(process.pid), time.monotonic()
            )
            threads1 = thread_cpu(process.pid)
            elapsed = wall1 - wall0
            memory = memory_mb(process.pid)
            result = Round(
                cpu_percent=100.0 * (cpu1 - cpu0) / elapsed,
                rss=memory["rss"],
                pss=memory["pss"],
                uss=memory["uss"],
                wakeups_per_s=(switches1 - switches0) / elapsed,
                threads=thread_count(process.pid),
                audio_frames_per_s=(stats.audio_frames - audio0) / elapsed,
                video_frames=stats.video_frames - video0,
                speaker_s=(len(speaker.data) - speaker0) / 48_000,
                thread_percent={
                    name: 100.0 * (seconds - threads0.get(name, 0.0)) / elapsed
                    for name, seconds in threads1.items()
                },
            )
        finally:
            await stop(process)
            mic.close()
            speaker.close()
        if result.audio_frames_per_s < 1 or result.video_frames < 1:
            raise RuntimeError(f"the {name} agent did not stream (a round must measure the work)")
        return result


async def measure(root: Path) -> dict[str, list[Round]]:
    alsa = VirtualAlsa(root)
    alsa.install()
    scenario = Scenario.from_mapping({"name": "bench", "default_reply": "I heard you say {text}."})
    rounds: dict[str, list[Round]] = {name: [] for name in AGENTS}
    config = EmulatorConfig(tls=True, api_key=API_KEY, scenario=scenario)
    async with Emulator(config) as emulator:
        bench = Bench(root, alsa, emulator)
        for _ in range(ROUNDS):
            for name in AGENTS:
                rounds[name].append(await bench.round(name))
    alsa.uninstall()
    return rounds


def report(rounds: dict[str, list[Round]]) -> None:
    def median(name: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in rounds[name]))

    def ratio(ours: float, theirs: float) -> str:
        return f"{ours / theirs:.2f}x" if theirs else "-"

    rows: list[tuple[str, ...]] = []

    def row(label: str, field: str, fmt: str, goal: str = "", met: bool | None = None) -> None:
        ours, theirs, floor = (median(name, field) for name in AGENTS)
        shown = "" if met is None else ("yes" if met else "NO")
        rows.append((
            label, fmt.format(ours), fmt.format(theirs), ratio(ours, theirs),
            fmt.format(floor), ratio(ours, floor), f"{goal} {shown}",
        ))

    cpu_ratio = median("daemon", "cpu_percent") / median("cookbook", "cpu_percent")
    uss_ratio = median("daemon", "uss") / median("cookbook", "uss")
    row("CPU, % of one core", "cpu_percent", "{:.2f}", "ratio <= 0.5x", cpu_ratio <= 0.5)
    row("RSS, MB", "rss", "{:.1f}", "ours <= 50 MB", median("daemon", "rss") <= 50)
    row("PSS, MB", "pss", "{:.1f}")
    row("USS, MB", "uss", "{:.1f}", "ratio <= 0.5x", uss_ratio <= 0.5)
    row("wake-ups per second (all threads)", "wakeups_per_s", "{:.0f}")
    row("threads", "threads", "{:.0f}")
    row("audio frames/s at the emulator", "audio_frames_per_s", "{:.1f}")
    row("camera frames at the emulator", "video_frames", "{:.0f}")
    row("speech played, s", "speaker_s", "{:.1f}")
    daemon_cpu = median("daemon", "cpu_percent")
    print(
        f"\n\nThe tight loop: edge-agent run vs the cookbook agent, and the floor (the daemon's "
        f"work done by its libraries alone), same inputs "
        f"(median of {ROUNDS} alternating rounds, {MEASURE_S:.0f} s each after {WARMUP_S:.0f} s)"
    )
    print(
        f"{'measure':<36}{'edge-agent':>11}{'cookbook':>10}{'ratio':>8}"
        f"{'floor':>8}{'ratio':>8}  goal (ratio: to the cookbook)"
    )
    for label, ours, theirs, to_cookbook, floor, to_floor, goal in rows:
        print(f"{label:<36}{ours:>11}{theirs:>10}{to_cookbook:>8}{floor:>8}{to_floor:>8}  {goal}")
    print(
        f"goal: daemon CPU <= 1.25 % of one core: {'met' if daemon_cpu <= 1.25 else 'not met'}"
        f" ({daemon_cpu:.2f} %; the floor {median('floor', 'cpu_percent'):.2f} %)"
    )
    for agent in ("daemon", "floor"):
        names = {n for r in rounds[agent] for n in r.thread_percent}
        shares = {
            n: statistics.median(r.thread_percent.get(n, 0.0) for r in rounds[agent])
            for n in names
        }
        who = "edge-agent" if agent == "daemon" else "the floor"
        print(f"{who}'s CPU by thread, % of one core:")
        for name, share in sorted(shares.items(), key=lambda item: -item[1]):
            print(f"  {name:<34}{share:>11.2f}")
    print("rounds (CPU %):", {n: [round(r.cpu_percent, 2) for r in rs] for n, rs in rounds.items()})


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory(prefix="edge-agent-tight-") as tmp:
        rounds = asyncio.run(measure(Path(tmp)))
    report(rounds)


if __name__ == "__main__":
    main()
