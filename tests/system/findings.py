"""What the VM left in /var/log/system-test, read back into facts the tests assert on.

The VM's steps (``vm/usr/local/lib/system-test/steps.sh``) only act and record: the
journal (the agent's and the emulator's JSON events, systemd's own messages about the unit,
and the steps' ``step=NAME`` marks, all in one order), ``systemctl show`` snapshots, the
lamp line's level read from gpio-sim's sysfs, the kernel's trace of every GPIO line change,
the audio recorded from the loopback speaker, and the agent's and the system's memory.
"""

from __future__ import annotations

import json
import math
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

AGENT_UNIT = "edge-agent.service"
EMULATOR_UNIT = "edge-emulator.service"
MARK_TAG = "system-test"
LAMP_LINE = 17
# systemd's catalog id of "Started UNIT" (for Type=notify: READY=1 arrived).
STARTED_MESSAGE_ID = "39f53479d3a045ac8e11786248231fbf"
# gpiolib's trace events: "gpio_value: 1009 set 1", "gpio_direction: 1009  in (0)" (the
# number in brackets is the driver's return code).
_TRACE = re.compile(r"\s(\d+\.\d+): gpio_(value|direction): (\d+)\s+(set|get|in|out) \(?(-?\d+)\)?")
# The steps' memory snapshots: the session live for a while, and just after the reply played.
MEMORY_STEPS = ("steady", "after-reply")
_CHIP = re.compile(r"^gpiochip\d+: GPIOs (\d+)-(\d+), parent: platform/gpio-sim", re.M)


@dataclass(frozen=True)
class Entry:
    """One journal entry, in boot order."""

    position: int
    unit: str
    identifier: str
    pid: int
    uid: int
    message: str
    message_id: str
    about_unit: str  # systemd's messages about a unit carry it in UNIT=

    @property
    def event(self) -> dict[str, Any] | None:
        """The structlog event of an agent or emulator line, or None for other lines."""
        if not self.message.startswith("{"):
            return None
        try:
            parsed = json.loads(self.message)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) and "event" in parsed else None


@dataclass(frozen=True)
class Memory:
    """The agent's and the system's memory at one step, in kB (memory-NAME.txt)."""

    rss_kb: int  # the agent's resident set (smaps_rollup)
    pss_kb: int  # ... with shared pages divided among their sharers
    uss_kb: int  # ... only its private pages (what its exit would free)
    available_kb: int  # the system's MemAvailable
    total_kb: int  # the system's MemTotal
    unit: dict[str, str]  # the unit's MemoryCurrent, MemoryPeak, MemoryHigh, MemoryMax (bytes)

    @classmethod
    def parse(cls, text: str) -> Memory | None:
        """The numbers in a memory-NAME.txt, or None when any is missing."""
        kb = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^(\w+):\s+(\d+) kB$", text, re.M)}
        unit = dict(line.split("=", 1) for line in text.splitlines()
                    if line.startswith("Memory") and "=" in line)
        needed = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "MemAvailable", "MemTotal")
        if not all(k in kb for k in needed):
            return None
        return cls(kb["Rss"], kb["Pss"], kb["Private_Clean"] + kb["Private_Dirty"],
                   kb["MemAvailable"], kb["MemTotal"], unit)

    def unit_mb(self, name: str) -> float | None:
        """One of the unit's memory values in MB (None when unset or unknown)."""
        value = self.unit.get(name, "")
        return int(value) / 2**20 if value.isdigit() else None


@dataclass(frozen=True)
class LineChange:
    """A change of a GPIO line traced in the kernel (gpiolib's gpio_value/gpio_direction)."""

    seconds: float
    kind: str  # "value" or "direction"
    gpio: int
    what: str  # "set" for values, "in"/"out" for directions
    value: int  # the level set, or the driver's return code for a direction change


class Findings:
    """Accessors over one run's log folder."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.journal = _read_journal(logs / "journal.json")

    # -- the journal ------------------------------------------------------------------------

    def mark(self, name: str) -> int:
        """The journal position of the steps' mark ``name``; -1 when it is missing."""
        for entry in self.journal:
            if entry.identifier == MARK_TAG and entry.message == f"step={name}":
                return entry.position
        return -1

    def marks(self) -> list[str]:
        return [e.message.removeprefix("step=") for e in self.journal
                if e.identifier == MARK_TAG and e.message.startswith("step=")]

    def events(self, unit: str, name: str | None = None, *, after: int = -1,
               before: int | None = None) -> list[tuple[Entry, dict[str, Any]]]:
        """A unit's structlog events (named ``name``, if given) between two positions."""
        found = []
        for entry in self.journal:
            if entry.unit != unit or entry.position <= after:
                continue
            if before is not None and entry.position >= before:
                break
            event = entry.event
            if event is not None and (name is None or event["event"] == name):
                found.append((entry, event))
        return found

    def systemd_says(self, unit: str, pattern: str, *, after: int = -1) -> list[Entry]:
        """systemd's own messages about ``unit`` matching the regex ``pattern``."""
        return [e for e in self.journal if e.about_unit == unit and e.position > after
                and e.identifier == "systemd" and re.search(pattern, e.message)]

    def unit_log_after(self, unit: str, mark: str, limit: int = 80) -> str:
        """The unit's journal lines (its own and systemd's about it) after a mark, as text."""
        start = self.mark(mark)
        lines = [e.message for e in self.journal if e.position > start
                 and (e.unit == unit or e.about_unit == unit)]
        return "\n".join(lines[:limit])

    # -- snapshots ------------------------------------------------------------------------

    def show(self, name: str) -> dict[str, str]:
        """A ``systemctl show`` snapshot (show-NAME.txt) as a dict; empty when missing."""
        path = self.logs / f"show-{name}.txt"
        if not path.is_file():
            return {}
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return dict(pairs)

    def lamp(self, name: str) -> str:
        """The lamp line's level from sysfs at step ``name`` ("0"/"1", or what went wrong)."""
        path = self.logs / f"lamp-{name}.txt"
        return path.read_text().strip() if path.is_file() else f"no lamp-{name}.txt"

    def text(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace") if path.is_file() else ""

    # -- the GPIO trace ------------------------------------------------------------------

    def sim_gpio(self, line: int = LAMP_LINE) -> int | None:
        """The kernel's global GPIO number of the gpio-sim chip's ``line``."""
        match = _CHIP.search(self.text("gpio-chips.txt"))
        return int(match.group(1)) + line if match else None

    def line_changes(self, line: int = LAMP_LINE) -> list[LineChange]:
        """Every traced value set and direction change of the gpio-sim chip's ``line``."""
        gpio = self.sim_gpio(line)
        changes = []
        for match in _TRACE.finditer(self.text("gpio-trace.txt")):
            secs, kind, number, what, value = match.groups()
            if int(number) == gpio and what != "get":
                changes.append(LineChange(float(secs), kind, gpio, what, int(value)))
        return changes

    # -- memory ------------------------------------------------------------------------------

    def memory(self, name: str) -> Memory | None:
        """The memory snapshot the steps took at ``name`` (None when missing or partial)."""
        return Memory.parse(self.text(f"memory-{name}.txt"))

    def memory_table(self, names: tuple[str, ...] = MEMORY_STEPS) -> str:
        """The snapshots as a table, in MB, with what the unit's MemoryMax= leaves."""
        head = (f"{'step':<12} {'RSS':>7} {'PSS':>7} {'USS':>7} {'unit':>7} {'Max':>7} "
                f"{'left':>7} {'MemAvail':>9} {'MemTotal':>9}")
        lines = [head]
        for name in names:
            mem = self.memory(name)
            if mem is None:
                lines.append(f"{name:<12} (no snapshot)")
                continue
            current, limit = mem.unit_mb("MemoryCurrent"), mem.unit_mb("MemoryMax")
            left = limit - current if limit is not None and current is not None else None
            lines.append(
                f"{name:<12} {mem.rss_kb / 1024:7.1f} {mem.pss_kb / 1024:7.1f} "
                f"{mem.uss_kb / 1024:7.1f} {_mb(current)} {_mb(limit)} {_mb(left)} "
                f"{mem.available_kb / 1024:9.1f} {mem.total_kb / 1024:9.1f}")
        return "\n".join(lines)

    # -- the recorded reply ----------------------------------------------------------------

    def reply_audio(self) -> Audio:
        return Audio.read(self.logs / "reply.wav")


@dataclass(frozen=True)
class Audio:
    """A mono 16-bit recording and how much of it is sound rather than silence."""

    rate: int
    samples: np.ndarray[Any, np.dtype[np.int16]]

    @classmethod
    def read(cls, path: Path) -> Audio:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise ValueError(f"{path}: expected mono 16-bit PCM")
            frames = wav.readframes(wav.getnframes())
            return cls(wav.getframerate(), np.frombuffer(frames, dtype="<i2"))

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate if self.rate else 0.0

    def loud_seconds(self, threshold_dbfs: float = -40.0, window_s: float = 0.02) -> float:
        """Time in 20 ms windows whose RMS level is above ``threshold_dbfs``."""
        size = max(1, int(self.rate * window_s))
        count = self.samples.size // size
        if count == 0:
            return 0.0
        windows = self.samples[: count * size].astype(np.float64).reshape(count, size)
        rms = np.sqrt(np.mean(windows * windows, axis=1))
        loud = rms > 32768.0 * math.pow(10.0, threshold_dbfs / 20.0)
        return float(np.count_nonzero(loud)) * window_s


def _mb(value: float | None) -> str:
    return f"{value:7.1f}" if value is not None else f"{'-':>7}"


def _read_journal(path: Path) -> list[Entry]:
    if not path.is_file():
        return []
    raw = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        raw.append(fields)
    raw.sort(key=lambda f: int(f.get("__MONOTONIC_TIMESTAMP", 0)))
    return [Entry(position=i, unit=str(f.get("_SYSTEMD_UNIT", "")),
                  identifier=str(f.get("SYSLOG_IDENTIFIER", "")), pid=int(f.get("_PID", 0)),
                  uid=int(f.get("_UID", -1)),
                  message=_message(f.get("MESSAGE")), message_id=str(f.get("MESSAGE_ID", "")),
                  about_unit=str(f.get("UNIT", "")))
            for i, f in enumerate(raw)]


def _message(value: Any) -> str:
    if isinstance(value, list):  # journald exports non-UTF-8 messages as byte lists
        return bytes(v for v in value if isinstance(v, int)).decode("utf-8", "replace")
    return "" if value is None else str(value)
