"""The whole daemon at steady state, measured from outside, as on a device.

``edge-agent run`` runs as its own process with a real PyAudio capture of an I2S-format mic
(48 kHz, 2 ch, S32 through ALSA's plug over a paced pipe), a 1 FPS camera at 768x576 (test
pattern), playback into a real-time drained virtual speaker, mock GPIO, and this process's
emulator answering a spoken burst every 4 s. Reported: time from exec to READY=1, CPU percent
of one core and RSS at steady state, split into anonymous memory and shared library pages.
The daemon starts with the Python libraries out of the page cache, as a service does after a
boot (see page_cache.py). For scale, the RSS of a bare interpreter that only imports
the agent's libraries is measured in the same run. The daemon runs twice, with Prometheus
metrics off and then on (scraped every second, fifteen times as often as Prometheus's default):
the difference is what metrics cost; the two alternate for three rounds and the medians are
compared. Echo handling is set to half duplex (the default with a WAV or null speaker; with a
speaker device it is aec): while a reply plays, the mic's chunks are not sent, so fewer than 25
a second reach the emulator.

Run by tests/bench/test_bench_daemon.py in a process of its own (the virtual sound devices
must be set up before PortAudio first starts in a process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import structlog
from page_cache import evict_shared_libraries  # beside this script

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from agent.media.audio import devices
from agent.media.audio.virtual_alsa import MIC_FD, SPEAKER_FD, VirtualAlsa

# The daemon reads the mic 40 ms at a time; ALSA's plug then reads 40 ms of the 16 kHz feed.
FEED_BLOCK = 1280
WARMUP_S = 4.0
MEASURE_S = 20.0
ROUNDS = int(os.environ.get("DAEMON_BENCH_ROUNDS", "3"))
TICKS = os.sysconf("SC_CLK_TCK")
DEVICES_PY = Path(devices.__file__)


def mic_feed(seconds: float) -> bytes:
    """16 kHz mono S16: a voice-like burst every 4 s."""
    rate = 16_000
    t = np.arange(int(0.6 * rate)) / rate
    burst = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 0.6)
    period = np.concatenate([burst, np.zeros(int(3.4 * rate))])
    reps = int(np.ceil(seconds / 4.0))
    return (np.tile(period, reps) * 32767).astype("<i2").tobytes()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config_text(endpoint: str, metrics_port: int | None = None) -> str:
    metrics = "" if metrics_port is None else f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
    return metrics + f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "vmic_i2s"
mic = "inmp441"
echo = "half_duplex"

[audio.output]
device = "vspk"
rate = 24000

[camera]
source = "test-pattern"
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


DEVICE_ONLY = """
import os, sys, time, pyaudio
pa = pyaudio.PyAudio()
index = next(i for i in range(pa.get_device_count())
             if pa.get_device_info_by_index(i)["name"] == "vmic_i2s")
stream = pa.open(format=pyaudio.paInt32, channels=2, rate=48000, input=True,
                 input_device_index=index, frames_per_buffer=1920)
stream.read(1920, exception_on_overflow=False)
t0, c0 = time.monotonic(), time.process_time()
while time.monotonic() - t0 < float(sys.argv[1]):
    stream.read(1920, exception_on_overflow=False)
print(100.0 * (time.process_time() - c0) / (time.monotonic() - t0))
"""


async def device_only_cpu(alsa: VirtualAlsa, seconds: float) -> float:
    """CPU of a bare PyAudio read loop on the same virtual I2S device: what ALSA's plug
    conversion (16 kHz file to 48 kHz S32 stereo) costs here, which a Pi's real I2S
    device does not."""
    mic = alsa.mic()
    mic.play(mic_feed(seconds + 5), block_bytes=FEED_BLOCK, bytes_per_second=32_000)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DEVICE_ONLY,
        str(seconds),
        pass_fds=(MIC_FD, SPEAKER_FD),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    mic.close()
    return float(out.decode().strip())


def bare_interpreter_rss(init_portaudio: bool = False) -> float:
    """RSS of an interpreter that imports the agent's libraries (and starts PortAudio with the
    agent's helper, which releases the scan's ALSA plugins). The helper's file is loaded on its
    own: importing it as agent.media.audio.devices would bring the whole audio package in."""
    code = (
        "import numpy, websockets, structlog, pyaudio, soxr, simplejpeg, gpiozero, orjson, "
        "pybase64, uvloop, pathlib; "
        + (
            "import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('devices', {str(DEVICES_PY)!r}); "
            "devices = sys.modules['devices'] = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(devices); host = devices.PortAudio(); "
            if init_portaudio
            else ""
        )
        + "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
        "if l.startswith('VmRSS')][0].split()[1])"
    )
    evict_shared_libraries()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


async def stop(process: asyncio.subprocess.Process) -> None:
    """End the daemon, whatever happened: one left running would spin on the closed mic pipe."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape_every(port: int, interval_s: float, scrapes: list[int]) -> None:
    """Scrape the daemon's metrics as a Prometheus server would; count the samples read."""
    url = f"http://127.0.0.1:{port}/metrics"
    while True:
        try:
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(url, timeout=5).read())
            scrapes.append(body.count(b"\nedge_agent_"))
        except OSError:
            pass
        await asyncio.sleep(interval_s)


async def measure(alsa: VirtualAlsa, root: Path, metrics: bool) -> dict[str, float]:
    root = root / ("metrics-on" if metrics else "metrics-off")  # its own config and socket
    root.mkdir(parents=True)
    mic = alsa.mic()
    speaker = alsa.speaker(bytes_per_second=24_000 * 2)
    scenario = Scenario.from_mapping({"name": "bench", "default_reply": "I heard you say {text}."})
    async with Emulator(EmulatorConfig(scenario=scenario)) as emulator:
        config = root / "agent.toml"
        port = free_port() if metrics else None
        config.write_text(config_text(emulator.url, port))
        scrapes: list[int] = []
        scraper = None if port is None else asyncio.create_task(scrape_every(port, 1.0, scrapes))
        notify_path = root / "notify.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.setblocking(False)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
        evict_shared_libraries()
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.cli",
            "run",
            "--config",
            str(config),
            env=env,
            pass_fds=(MIC_FD, SPEAKER_FD),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            feed = mic_feed(WARMUP_S + MEASURE_S + 30)
            mic.play(feed, block_bytes=FEED_BLOCK, bytes_per_second=32_000)
            loop = asyncio.get_running_loop()
            ready_s = float("nan")
            async with asyncio.timeout(30):
                while True:
                    note = (await loop.sock_recv(notify, 4096)).decode()
                    if "READY=1" in note:
                        ready_s = time.monotonic() - started
                        break
            await asyncio.sleep(WARMUP_S)
            cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
            audio0 = len(emulator.recordings.session().audio)
            await asyncio.sleep(MEASURE_S)
            cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
            recording = emulator.recordings.session()
            result = {
                "ready_s": ready_s,
                "cpu_percent": 100.0 * (cpu1 - cpu0) / (wall1 - wall0),
                "rss_mb": rss_mb(process.pid),
                "anon_mb": rss_mb(process.pid, "RssAnon"),
                "file_mb": rss_mb(process.pid, "RssFile"),
                "peak_rss_mb": rss_mb(process.pid, "VmHWM"),
                "audio_chunks_per_s": (len(recording.audio) - audio0) / (wall1 - wall0),
                "video_frames": len(recording.video),
                "speaker_seconds": len(speaker.data) / 48_000,
                "scrapes": len(scrapes),
                "samples_per_scrape": scrapes[-1] if scrapes else 0,
            }
        finally:
            if scraper is not None:
                scraper.cancel()
            await stop(process)
        notify.close()
    mic.close()
    speaker.close()
    return result


async def measure_all(root: Path) -> tuple[list[dict[str, float]], list[dict[str, float]], float]:
    """The daemon with metrics off and on, alternating for ``ROUNDS`` rounds (a machine that is
    busier for one of them then shows in both); the virtual device's own CPU once."""
    alsa = VirtualAlsa(root)
    alsa.install()
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    try:
        for index in range(ROUNDS):
            off.append(await measure(alsa, root / f"round-{index}", metrics=False))
            on.append(await measure(alsa, root / f"round-{index}", metrics=True))
        device_cpu = await device_only_cpu(alsa, MEASURE_S / 2)
    finally:
        alsa.uninstall()
    return off, on, device_cpu


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run whose CPU is the median, so that its other figures come from the same run."""
    return sorted(runs, key=lambda run: run["cpu_percent"])[(len(runs) - 1) // 2]


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory(prefix="edge-agent-bench-") as tmp:
        offs, ons, device_cpu = asyncio.run(measure_all(Path(tmp)))
    result, with_metrics = median_run(offs), median_run(ons)
    result["device_cpu_percent"] = device_cpu
    bare = bare_interpreter_rss()
    with_portaudio = bare_interpreter_rss(init_portaudio=True)
    own_cpu = result["cpu_percent"] - result["device_cpu_percent"]
    rows = [
        ("start to READY=1", f"{result['ready_s']:.2f} s", "< 1.5 s", result["ready_s"] < 1.5),
        ("CPU, one core", f"{result['cpu_percent']:.2f} %", "< 3 %", result["cpu_percent"] < 3),
        (
            "  of which the virtual device's ALSA plug",
            f"{result['device_cpu_percent']:.2f} %",
            "(reference)",
            None,
        ),
        ("CPU less the virtual device", f"{own_cpu:.2f} %", "< 3 %", own_cpu < 3),
        ("RSS", f"{result['rss_mb']:.1f} MB", "< 60 MB", result["rss_mb"] < 60),
        ("  anonymous (the daemon's own)", f"{result['anon_mb']:.1f} MB", "", None),
        ("  file-backed (shared libraries)", f"{result['file_mb']:.1f} MB", "", None),
        ("peak RSS", f"{result['peak_rss_mb']:.1f} MB", "", None),
        ("bare interpreter + libraries RSS", f"{bare:.1f} MB", "(reference)", None),
        (
            "  + PortAudio initialised",
            f"{with_portaudio:.1f} MB",
            "(reference)",
            None,
        ),
        ("RSS over that reference", f"{result['rss_mb'] - with_portaudio:.1f} MB", "", None),
        (
            "audio chunks/s at the emulator",
            f"{result['audio_chunks_per_s']:.1f}",
            "<= 25",
            None,
        ),
        ("camera frames at the emulator", f"{result['video_frames']}", "", None),
        ("speech played to the speaker", f"{result['speaker_seconds']:.1f} s", "", None),
    ]
    print_table(
        f"\n\nDaemon at steady state (the median of {ROUNDS} runs by CPU, {MEASURE_S:.0f} s"
        f" measured after {WARMUP_S:.0f} s)",
        rows,
    )
    overhead = with_metrics["cpu_percent"] - result["cpu_percent"]
    rows = [
        ("CPU, metrics off", f"{result['cpu_percent']:.2f} %", "", None),
        ("CPU, metrics on, scraped every 1 s", f"{with_metrics['cpu_percent']:.2f} %", "", None),
        ("overhead of metrics", f"{overhead:+.2f} %", "< 0.2 %", overhead < 0.2),
        ("scrapes in the run (samples each)",
         f"{with_metrics['scrapes']:.0f} ({with_metrics['samples_per_scrape']:.0f})", "", None),
        ("RSS, metrics off", f"{result['rss_mb']:.1f} MB", "", None),
        ("RSS, metrics on", f"{with_metrics['rss_mb']:.1f} MB", "", None),
    ]
    print_table(
        f"\nPrometheus metrics: the same daemon, off and on in {ROUNDS} alternating rounds"
        f" ({MEASURE_S:.0f} s each; medians)",
        rows,
    )
    print("rounds (CPU %): off", [round(r["cpu_percent"], 2) for r in offs],
          "on", [round(r["cpu_percent"], 2) for r in ons])


def print_table(title: str, rows: list[tuple[str, str, str, bool | None]]) -> None:
    print(title)
    print(f"{'measure':<42}{'value':>12}{'goal':>14}{'met':>6}")
    for name, value, goal, met in rows:
        shown = "" if met is None else ("yes" if met else "NO")
        print(f"{name:<42}{value:>12}{goal:>14}{shown:>6}")


if __name__ == "__main__":
    main()
