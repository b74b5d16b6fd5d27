"""The unit's ``MemoryDenyWriteExecute=yes`` and resource limits, applied without systemd.

systemd enforces ``MemoryDenyWriteExecute=`` with the kernel's ``PR_SET_MDWE`` (or a seccomp
filter doing the same): no memory mapping may be writable and executable, or become executable
later. A process gets the same restriction here from ``prctl(PR_SET_MDWE,
PR_MDWE_REFUSE_EXEC_GAIN)`` before it execs Python (the flag is inherited across exec); the
tests first prove the restriction holds (a W+X mapping is refused), then that every native
library the daemon loads still works under it, and that ``edge-agent run`` answers a spoken
command against the emulator with its memory and threads well inside the unit's MemoryHigh=
and TasksMax=.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support.emulator_client import LAMP_SCENARIO, write_spoken_commands

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "edge-agent.service"
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
T = 30.0

# Sets the restriction on itself, then becomes the command in argv[1:].
UNDER_MDWE = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE) failed: errno " + str(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def _mdwe_unsupported() -> str | None:
    if sys.platform != "linux":
        return "PR_SET_MDWE is Linux only"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:  # reading it changes nothing
        return f"this kernel has no PR_SET_MDWE (Linux >= 6.3): {os.uname().release}"
    return None


pytestmark = pytest.mark.skipif(_mdwe_unsupported() is not None,
                                reason=str(_mdwe_unsupported()))


def under_mdwe(*command: str) -> list[str]:
    return [sys.executable, "-c", UNDER_MDWE, *command]


# Each check loads one library and makes it do real work; the result goes to stdout as JSON.
LIBRARIES = r"""
import ctypes, json, mmap, sys, time

results = {}
def check(name, work):
    try:
        results[name] = work()
    except Exception as exc:
        results[name] = f"FAILED: {type(exc).__name__}: {exc}"

def wx_mapping():
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return "refused"
    return "FAILED: allowed"

def numpy_work():
    import numpy as np
    return float(np.abs(np.fft.rfft(np.ones(1024))).max()) == 1024.0 and "ok"

def soxr_work():
    import numpy as np, soxr
    return len(soxr.resample(np.zeros(16000, np.float32), 16000, 24000)) == 24000 and "ok"

def uvloop_work():
    import asyncio, uvloop
    return uvloop.run(asyncio.sleep(0.01, "ok"))

def simplejpeg_work():
    import numpy as np, simplejpeg
    image = np.full((48, 64, 3), 128, np.uint8)
    return simplejpeg.decode_jpeg(simplejpeg.encode_jpeg(image)).shape == (48, 64, 3) and "ok"

def orjson_work():
    import orjson
    return orjson.loads(orjson.dumps({"a": [1, 2.5]})) == {"a": [1, 2.5]} and "ok"

def pybase64_work():
    import pybase64
    return pybase64.b64decode(pybase64.b64encode(b"\x00" * 999)) == b"\x00" * 999 and "ok"

def regex_work():
    import regex
    return regex.fullmatch(r"^([a-z]+ ?)+$", "abc def", timeout=1.0) is not None and "ok"

def ctypes_callback():
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
    return callback(41) == 42 and "ok"

def portaudio_work():
    from agent.media.audio.virtual_alsa import VirtualAlsa
    import pyaudio
    alsa = VirtualAlsa(sys.argv[1])
    alsa.install()  # PortAudio enumerates (and so opens) every device
    speaker = alsa.speaker(32000)
    audio = pyaudio.PyAudio()
    index = next(i for i in range(audio.get_device_count())
                 if audio.get_device_info_by_index(i)["name"] == "vspk")
    stream = audio.open(rate=16000, channels=1, format=pyaudio.paInt16, output=True,
                        output_device_index=index)
    stream.write(b"\x01\x00" * 1600)
    stream.stop_stream(); stream.close(); audio.terminate()
    time.sleep(0.3)  # the drain reads in real time
    speaker.close()
    return len(speaker.data) > 0 and "ok"

def gpiozero_work():
    from gpiozero import Device, LED
    from gpiozero.pins.mock import MockFactory
    Device.pin_factory = MockFactory()
    led = LED(17); led.on(); on = led.is_lit; led.close()
    return on and "ok"

def lgpio_work():
    try:
        import lgpio
    except ImportError:
        return "absent"
    return callable(lgpio.gpiochip_open) and "ok"

for name, work in [("W+X mapping", wx_mapping), ("numpy", numpy_work), ("soxr", soxr_work),
                   ("uvloop", uvloop_work), ("simplejpeg", simplejpeg_work),
                   ("orjson", orjson_work), ("pybase64", pybase64_work), ("regex", regex_work),
                   ("ctypes callback", ctypes_callback), ("PortAudio", portaudio_work),
                   ("gpiozero", gpiozero_work), ("lgpio", lgpio_work)]:
    check(name, work)
print(json.dumps(results))
"""


def test_the_native_libraries_work_without_writable_executable_memory(tmp_path: Path) -> None:
    result = subprocess.run(under_mdwe(sys.executable, "-c", LIBRARIES, str(tmp_path)),
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results.pop("W+X mapping") == "refused", "the restriction is in force"
    if results["lgpio"] == "absent":  # a Raspberry Pi package: not on every test machine
        del results["lgpio"]
    assert results == dict.fromkeys(results, "ok")


def test_a_mapping_is_refused_only_under_the_restriction() -> None:
    """The check above is not vacuous: without the prctl the same W+X mapping is allowed."""
    code = ("import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | "
            "mmap.PROT_EXEC); print('allowed')")
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    held = subprocess.run(under_mdwe(sys.executable, "-c", code), capture_output=True,
                          text=True, timeout=30, check=False)
    assert free.stdout.strip() == "allowed"
    assert held.returncode != 0 and "PermissionError" in held.stderr


def config_text(endpoint: str, tmp: Path) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "wav:{tmp / "commands.wav"}"
echo = "none"

[audio.output]
device = "wav:{tmp / "reply.wav"}"

[camera]
source = "test-pattern"
interval_s = 0.5

[gpio]
pin_factory = "mock"

[[tools]]
name = "set_lamp"
description = "Switch the lamp."
kind = "digital_output"
pin = 17

[logging]
level = "info"
format = "json"
"""


def _unit_limits() -> tuple[int, int]:
    """MemoryHigh= in kB and TasksMax= from the unit."""
    values = dict(line.partition("=")[::2] for line in UNIT.read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    return int(values["MemoryHigh"].removesuffix("M")) * 1024, int(values["TasksMax"])


def _status(pid: int) -> dict[str, int]:
    """VmHWM (kB, the peak RSS) and Threads from /proc/PID/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "Threads"):
            fields[name] = int(value.split()[0])
    return fields


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(time_scale=0.3, scenario=Scenario.from_mapping(LAMP_SCENARIO))
    async with Emulator(config) as running:
        yield running


async def test_the_daemon_answers_a_command_under_the_units_restrictions(
        emulator: Emulator, tmp_path: Path) -> None:
    write_spoken_commands(tmp_path / "commands.wav")
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, tmp_path))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    process = await asyncio.create_subprocess_exec(
        *under_mdwe(sys.executable, "-m", "agent.cli", "run", "--config", str(config)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
    )  # fmt: skip
    events: list[dict[str, object]] = []
    peak: dict[str, int] = {}

    async def read_logs() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append({"event": "non-json", "line": line.decode(errors="replace")})

    reader = asyncio.create_task(read_logs())
    try:
        async with asyncio.timeout(T):
            while not any(e.get("event") == "tool.actuated" and e.get("outcome") == "ok"
                          for e in events):
                assert process.returncode is None, events[-10:]
                status = _status(process.pid)
                peak = {k: max(v, peak.get(k, 0)) for k, v in status.items()}
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the reply plays on
        peak = {k: max(v, peak.get(k, 0)) for k, v in _status(process.pid).items()}
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(T):
            code = await process.wait()
        await reader
        notify.close()
    assert code == 0, events[-10:]
    assert not [e for e in events if e.get("level") in ("error", "critical")], events
    memory_high_kb, tasks_max = _unit_limits()
    print(f"under MDWE: peak RSS {peak['VmHWM'] / 1024:.0f} MB, threads {peak['Threads']}")
    assert peak["VmHWM"] < memory_high_kb / 2, peak
    assert peak["Threads"] < tasks_max / 2, peak
