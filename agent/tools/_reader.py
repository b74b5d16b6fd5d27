"""Typed reads from raw TOML tables that collect problems instead of stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent.tools.errors import ConfigProblem, KeyPath

MAX_PIN = 27  # BCM GPIO0..27 are on the 40-pin header of every supported Pi
MAX_SECONDS = 600.0

MISSING: Any = object()
"""Default meaning "the key is required"."""


class Table:
    """Typed reads from one raw table, collecting problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any], loc: KeyPath, problems: list[ConfigProblem]):
        self.raw, self.loc, self.problems = raw, loc, problems
        self.used: set[str] = set()

    def problem(self, key: str | None, message: str) -> None:
        self.problems.append(ConfigProblem(self.loc if key is None else (*self.loc, key), message))

    def get(self, key: str, default: Any = MISSING) -> Any:
        self.used.add(key)
        if key in self.raw:
            return self.raw[key]
        if default is MISSING:
            self.problem(key, "is required")
        return default

    def text(self, key: str, default: Any = MISSING, choices: Sequence[str] = ()) -> str:
        value = self.get(key, default)
        if value is MISSING:
            return ""
        if not isinstance(value, str):
            self.problem(key, f"must be a string (got {value!r})")
            return "" if default is MISSING or default is None else str(default)
        if choices and value not in choices:
            self.problem(key, "must be one of " + ", ".join(repr(c) for c in choices)
                         + f" (got {value!r})")
            return "" if default is MISSING or default is None else str(default)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false (got {value!r})")
            return default
        return value

    def number(self, key: str, default: Any, lo: float, hi: float, *,
               lo_open: bool = False) -> float:
        value = self.get(key, default)
        if value is MISSING:
            return lo
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(
                value):
            self.problem(key, f"must be a number (got {value!r})")
            return default if isinstance(default, int | float) else lo
        if (value <= lo if lo_open else value < lo) or value > hi:
            low = f"> {lo:g}" if lo_open else f">= {lo:g}"
            self.problem(key, f"must be {low} and <= {hi:g} (got {value!r})")
            return default if isinstance(default, int | float) else lo
        return float(value)

    def pin(self, key: str, default: Any = MISSING) -> int | None:
        value = self.get(key, default)
        if value is MISSING or value is None:
            return None
        return check_pin(value, (*self.loc, key), self.problems)

    def finish(self, context: str = "") -> None:
        unknown = [k for k in self.raw if k not in self.used]
        for key in unknown:
            expected = ", ".join(sorted(self.used))
            self.problem(key, f"unknown key{context}; expected one of: {expected}")


def check_pin(value: Any, loc: KeyPath, problems: list[ConfigProblem]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PIN:
        return value
    problems.append(ConfigProblem(loc, f"must be a BCM GPIO number from 0 to {MAX_PIN} "
                                       f"(got {value!r})"))
    return None
