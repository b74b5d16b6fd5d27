"""Typed reads from the raw tables ``tomllib`` returns, collecting problems as they go.

Each read checks the type and the range and, on a problem, records it and returns the
default, so one pass finds every problem in the file. ``finish()`` reports keys nobody read,
with a "did you mean" suggestion for near misses.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent.config.problems import ConfigProblem, KeyPath

__all__ = ["MISSING", "Section", "describe", "suggest"]

MISSING: Any = object()
"""Default meaning "the key is required"."""


def describe(value: Any) -> str:
    """A value as the user wrote it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def suggest(key: str, known: Sequence[str]) -> str:
    """``'; did you mean "chunk_ms"?'`` for a near miss, else the list of known keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{close[0]}"?'
    if known:
        return "; expected one of: " + ", ".join(sorted(known))
    return "; this table takes no keys"


class Section:
    """One raw table at key path ``loc``; reads append to the shared ``problems`` list."""

    def __init__(self, raw: Any, loc: KeyPath, problems: list[ConfigProblem]) -> None:
        self.loc = loc
        self.problems = problems
        if raw is None:
            raw = {}
        elif not isinstance(raw, Mapping):
            self.problem(None, f"must be a table, got {describe(raw)}")
            raw = {}
        self.raw: Mapping[str, Any] = raw
        self.known: list[str] = []

    def problem(self, key: str | int | None, message: str) -> None:
        """Record a problem at ``key`` of this table (None: the table itself)."""
        path = self.loc if key is None else (*self.loc, key)
        self.problems.append(ConfigProblem(message, path))

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The raw value (or ``default``); a missing required key is a problem."""
        self.known.append(key)
        if key in self.raw:
            return self.raw[key]
        if default is MISSING:
            self.problem(key, "is required")
        return default

    def _present(self, key: str, default: Any) -> bool:
        """Whether ``key`` is written (marking it known; a missing required key is a problem)."""
        self.get(key, default)
        return key in self.raw

    def section(self, key: str) -> Section:
        """A sub-table (an empty one when absent)."""
        return Section(self.get(key, None), (*self.loc, key), self.problems)

    def text(self, key: str, default: Any = MISSING, choices: Sequence[str] = (),
             *, allow_empty: bool = False) -> Any:
        """A string; with ``choices``, one of them."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {describe(value)}")
            return _fallback(default)
        if choices and value not in choices:
            self.problem(key, "must be one of " + ", ".join(describe(c) for c in choices)
                         + f", got {describe(value)}" + _close(value, choices))
            return _fallback(default)
        if not value.strip() and not allow_empty:
            self.problem(key, "must not be empty")
            return _fallback(default)
        return value

    def flag(self, key: str, default: Any) -> Any:
        """true or false."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {describe(value)}")
            return _fallback(default)
        return value

    def integer(self, key: str, default: Any, lo: int, hi: int) -> Any:
        """A whole number from ``lo`` to ``hi``."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(key, f"must be a whole number, got {describe(value)}")
            return _fallback(default)
        if not lo <= value <= hi:
            self.problem(key, f"must be between {lo} and {hi}, got {value}")
            return _fallback(default)
        return value

    def number(self, key: str, default: Any, lo: float, hi: float, *,
               lo_open: bool = False) -> Any:
        """A number from ``lo`` (exclusive with ``lo_open``) to ``hi``; returned as float."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not math.isfinite(value)):
            self.problem(key, f"must be a number, got {describe(value)}")
            return _fallback(default)
        if (value <= lo if lo_open else value < lo) or value > hi:
            if lo_open:
                self.problem(key, f"must be greater than {lo:g} and at most {hi:g}, got {value}")
            else:
                self.problem(key, f"must be between {lo:g} and {hi:g}, got {value}")
            return _fallback(default)
        return float(value)

    def finish(self, skip: Sequence[str] = ()) -> None:
        """Report every key of this table that no read asked for."""
        for key in self.raw:
            if key not in self.known and key not in skip:
                what = "unknown section" if not self.loc else "unknown key"
                self.problem(key, what + suggest(key, self.known))


def _fallback(default: Any) -> Any:
    return None if default is MISSING else default


def _close(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {describe(close[0])}?)" if close else ""
