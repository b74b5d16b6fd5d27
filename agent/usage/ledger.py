"""Tokens the service reported, summed per day, direction and modality, kept across restarts.

Every ``usageMetadata`` is added to the current day (local time): the prompt's tokens by
modality (``promptTokensDetails``) as input, the response's (``responseTokensDetails``, Vertex's
``candidatesTokensDetails``) as output; tokens a report counts but does not detail go to
``OTHER``; tool-use prompt tokens are input text and thinking tokens output text, as the
service bills them. The days are kept in one JSON file (the StateDirectory's ``usage.json``),
written whole to a temporary file and renamed over the old one, so a crash leaves the old file
or the new one. A file that cannot be read, is too big, or is not what this module writes is
reported once and set aside (``.corrupt``): the agent starts the day afresh, never fails on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog

from agent.live.limits import INT64_MAX
from agent.live.types import LiveUsageMetadata

__all__ = ["MODALITIES", "DayUsage", "UsageLedger", "tokens_of"]

log = structlog.get_logger(__name__)

MODALITIES = ("TEXT", "AUDIO", "IMAGE", "VIDEO", "DOCUMENT", "OTHER")
"""Modalities counted apart; any other name the service sends is counted as ``OTHER``."""
DIRECTIONS = ("input", "output")
KEEP_DAYS = 31
"""Days kept in the file (the newest); older ones are dropped when a day begins."""
MAX_FILE_BYTES = 256 * 1024
FORMAT = 1

Key = tuple[str, str]
"""(direction, modality)."""


@dataclass
class DayUsage:
    """One day's tokens by (direction, modality), and how many reports were summed."""

    day: date
    tokens: dict[Key, int] = field(default_factory=dict)
    reports: int = 0

    @property
    def total(self) -> int:
        return sum(self.tokens.values())

    def add(self, tokens: Mapping[Key, int]) -> None:
        for key, count in tokens.items():
            self.tokens[key] = min(INT64_MAX, self.tokens.get(key, 0) + count)
        self.reports += 1

    def cost(self, price: Callable[[str, str], float]) -> float:
        """What the day cost, given ``price(direction, modality)`` per million tokens."""
        return sum(count * price(*key) for key, count in self.tokens.items()) / 1_000_000


def tokens_of(usage: LiveUsageMetadata) -> dict[Key, int]:
    """One report's tokens by (direction, modality)."""
    tokens: dict[Key, int] = {}

    def add(key: Key, count: int) -> None:
        if count > 0:
            tokens[key] = tokens.get(key, 0) + count

    for direction, total, names in (
        ("input", usage.prompt_token_count, ("promptTokensDetails",)),
        ("output", usage.response_token_count,
         ("responseTokensDetails", "candidatesTokensDetails")),
    ):
        detailed = 0
        for modality, count in _details(usage.details, names):
            add((direction, modality), count)
            detailed += count
        add((direction, "OTHER"), total - detailed)
    add(("input", "TEXT"), usage.tool_use_prompt_token_count)
    add(("output", "TEXT"), usage.thoughts_token_count)
    return tokens


def _details(details: Mapping[str, Any], names: Iterable[str]) -> Iterable[tuple[str, int]]:
    """(modality, tokens) of the first of ``names`` present; entries not of the documented
    shape are skipped."""
    for name in names:
        entries = details.get(name)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            modality, count = entry.get("modality"), entry.get("tokenCount", 0)
            if (isinstance(count, int) and not isinstance(count, bool)
                    and 0 <= count <= INT64_MAX):
                yield (modality if modality in MODALITIES else "OTHER"), count
        return


def local_today() -> date:
    return datetime.now().astimezone().date()


class UsageLedger:
    """The days' usage, in memory and (when ``path`` is set) in a file.

    ``today`` is the clock (local date); ``since_start`` counts the tokens of this process, for
    counters that only grow.
    """

    def __init__(self, path: Path | None, *, today: Callable[[], date] = local_today) -> None:
        self.path = path
        self.today = today
        self.days: dict[date, DayUsage] = {}
        self.since_start: dict[Key, int] = {}
        self.dirty = False
        self._current = today()

    # -- counting -----------------------------------------------------------------------------

    def record(self, usage: LiveUsageMetadata) -> DayUsage:
        """Add one report to today; returns today."""
        tokens = tokens_of(usage)
        for key, count in tokens.items():
            self.since_start[key] = min(INT64_MAX, self.since_start.get(key, 0) + count)
        day = self.current()
        day.add(tokens)
        self.dirty = True
        return day

    def current(self) -> DayUsage:
        """Today's usage (a new, empty day once the date has changed)."""
        today = self.today()
        day = self.days.get(today)
        if day is None:
            day = self.days[today] = DayUsage(today)
            for old in sorted(self.days)[:-KEEP_DAYS]:
                del self.days[old]
        return day

    def roll(self) -> DayUsage | None:
        """The day just finished, once, when the date has changed since the last call."""
        today = self.today()
        if today == self._current:
            return None
        finished = self.days.get(self._current) or DayUsage(self._current)
        self._current = today
        self.current()
        return finished

    # -- the file -----------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file; a missing one starts empty, a bad one is set aside with a warning."""
        if self.path is None:
            return
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("usage.file_unreadable", path=str(self.path), error=str(exc))
            return
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
            days = _days_from_json(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            log.warning("usage.file_invalid", path=str(self.path), error=str(exc)[:200],
                        action="set aside; usage counted afresh")
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_name(self.path.name + ".corrupt"))
            return
        for day in sorted(days)[-KEEP_DAYS:]:
            self.days[day] = days[day]
        today = self.days.get(self.today())
        log.info("usage.loaded", path=str(self.path), days=len(self.days),
                 today_tokens=0 if today is None else today.total)

    def save(self) -> None:
        """Write every day kept, if anything changed since the last write."""
        text = self.snapshot()
        if text is not None:
            self.write(text)

    def snapshot(self) -> str | None:
        """What `write` would write now (None: nothing changed, or no file), taken on the event
        loop so that the write itself may run in a thread."""
        if self.path is None or not self.dirty:
            return None
        self.dirty = False
        return json.dumps(_days_to_json(self.days), separators=(",", ":"), sort_keys=True)

    def write(self, text: str) -> None:
        """Replace the file with ``text`` atomically; a failure is logged and the next
        snapshot tries again."""
        assert self.path is not None
        try:
            fd, temp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp",
                                        dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            self.dirty = True
            log.warning("usage.save_failed", path=str(self.path), error=str(exc))


def _days_to_json(days: Mapping[date, DayUsage]) -> dict[str, Any]:
    return {"format": FORMAT, "days": {
        day.isoformat(): {
            "reports": usage.reports,
            "tokens": {f"{d}.{m}": n for (d, m), n in sorted(usage.tokens.items())},
        } for day, usage in days.items()}}


def _days_from_json(doc: object) -> dict[date, DayUsage]:
    """The days of a file this module wrote; ValueError for anything else."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a usage file of format {FORMAT}")
    raw_days = doc.get("days")
    if not isinstance(raw_days, dict):
        raise ValueError("no days")
    days: dict[date, DayUsage] = {}
    for name, body in raw_days.items():
        day = date.fromisoformat(name)  # ValueError for anything but a date
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), dict):
            raise ValueError(f"{name}: not a day's usage")
        usage = DayUsage(day, reports=_count(body.get("reports", 0), name))
        for key, count in body["tokens"].items():
            direction, _, modality = key.partition(".")
            if direction not in DIRECTIONS or modality not in MODALITIES:
                raise ValueError(f"{name}: unknown token kind {key[:40]!r}")
            usage.tokens[(direction, modality)] = _count(count, name)
        days[day] = usage
    return days


def _count(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX:
        return value
    raise ValueError(f"{where}: a count must be a whole number from 0 to 2^63-1")
