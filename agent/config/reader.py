"""The reader kit: typed reads from the raw tables ``tomllib`` returns, collecting problems.

One `Table` wraps one raw table at a key path. Each read checks the type and the range and,
on a problem, records it and returns the default (None for a `REQUIRED` key), so one pass
finds every problem in the file. ``finish()`` reports keys nobody read, with a "did you
mean" suggestion for near misses. Values in messages are written as TOML writes them
(`describe`). A `Table` is the `agent.tools.option_reader.OptionReader` the tool kinds read
their own keys through.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent.config.problems import ConfigProblem, KeyPath
from agent.tools.option_reader import MAX_PIN, REQUIRED, Required

__all__ = ["REQUIRED", "Table", "describe", "suggest"]

_DESCRIBED_ARRAY = 40  # longer arrays are "an array" in messages
_DESCRIBED_TEXT = 80  # longer strings are cut in messages
_DESCRIBED_DIGITS = 20  # longer integers are "a number of N digits"


def describe(value: object) -> str:
    """A value as the user wrote it in TOML, for messages (long ones shortened)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > _DESCRIBED_TEXT:
            value = value[: _DESCRIBED_TEXT - 3] + "..."
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int) and abs(value) >= 10**_DESCRIBED_DIGITS:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        text = "[" + ", ".join(describe(v) for v in value[:_DESCRIBED_ARRAY]) + "]"
        return text if len(text) <= _DESCRIBED_ARRAY else "an array"
    return str(value)


def suggest(key: str, known: Sequence[str]) -> str:
    """``'; did you mean "chunk_ms"?'`` for a near miss, else the list of known keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{close[0]}"?'
    if known:
        return "; expected one of: " + ", ".join(sorted(known))
    return "; this table takes no keys"


class Table:
    """One raw table at key path ``loc``; reads append to the shared ``problems`` list.

    ``raw`` None is an absent table (every key takes its default); anything else that is
    not a table is a problem, and the table reads as empty.
    """

    def __init__(self, raw: object, loc: KeyPath, problems: list[ConfigProblem]) -> None:
        self.loc = loc
        self.problems = problems
        if raw is None:
            raw = {}
        elif not isinstance(raw, Mapping):
            self.invalid(None, "must be a table", raw)
            raw = {}
        self.raw: Mapping[str, Any] = raw
        self.known: dict[str, None] = {}  # the keys asked for, in order

    def problem(self, key: str | int | KeyPath | None, message: str) -> None:
        """Record a problem at ``key`` of this table (a tuple: a path below it; None: the
        table itself)."""
        if key is None:
            path = self.loc
        elif isinstance(key, tuple):
            path = (*self.loc, *key)
        else:
            path = (*self.loc, key)
        self.problems.append(ConfigProblem(message, path))

    def invalid(self, key: str | int | KeyPath | None, requirement: str, value: object) -> None:
        """Record ``"<requirement>, got <value>"`` at ``key``."""
        self.problem(key, f"{requirement}, got {describe(value)}")

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any = REQUIRED) -> Any:
        """The raw value (or ``default``); a missing required key is a problem (None)."""
        self.known[key] = None
        if key in self.raw:
            return self.raw[key]
        if default is REQUIRED:
            self.problem(key, "is required")
            return None
        return default

    def _present(self, key: str, default: Any) -> bool:
        """Whether ``key`` is written (marking it known; a missing required key is a problem)."""
        self.get(key, default)
        return key in self.raw

    def section(self, key: str) -> Table:
        """A sub-table (an empty one when absent)."""
        return Table(self.get(key, None), (*self.loc, key), self.problems)

    def text(self, key: str, default: Any = REQUIRED, choices: Sequence[str] = (),
             *, allow_empty: bool = False) -> Any:
        """A string; with ``choices``, one of them."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if not isinstance(value, str):
            self.invalid(key, "must be a string", value)
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
            self.invalid(key, "must be true or false", value)
            return _fallback(default)
        return value

    def integer(self, key: str, default: Any, lo: int, hi: int) -> Any:
        """A whole number from ``lo`` to ``hi``."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.invalid(key, "must be a whole number", value)
            return _fallback(default)
        if not lo <= value <= hi:
            self.invalid(key, f"must be between {lo} and {hi}", value)
            return _fallback(default)
        return value

    def number(self, key: str, default: Any, lo: float, hi: float, *,
               lo_open: bool = False) -> Any:
        """A number from ``lo`` (exclusive with ``lo_open``) to ``hi``; returned as float."""
        if not self._present(key, default):
            return _fallback(default)
        value = self.raw[key]
        # An int is compared as it is: float() of one with 400 digits overflows.
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or (isinstance(value, float) and not math.isfinite(value))):
            self.invalid(key, "must be a number", value)
            return _fallback(default)
        if (value <= lo if lo_open else value < lo) or value > hi:
            if lo_open:
                self.invalid(key, f"must be greater than {lo:g} and at most {hi:g}", value)
            else:
                self.invalid(key, f"must be between {lo:g} and {hi:g}", value)
            return _fallback(default)
        return float(value)

    def pin(self, key: str, default: Required | None = REQUIRED) -> int | None:
        """A BCM GPIO number of the 40-pin header."""
        if not self._present(key, default):
            return None
        return self._pin(key, self.raw[key])

    def pin_list(self, key: str) -> list[int]:
        """An array of BCM GPIO numbers (empty when absent); bad entries are problems."""
        raw = self.get(key, [])
        if not isinstance(raw, list):
            self.invalid(key, "must be a list of BCM GPIO numbers", raw)
            return []
        return [pin for i, value in enumerate(raw) if (pin := self._pin((key, i), value))
                is not None]

    def _pin(self, key: str | KeyPath, value: object) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PIN:
            return value
        self.invalid(key, f"must be a BCM GPIO number from 0 to {MAX_PIN}", value)
        return None

    def finish(self, context: str = "") -> None:
        """Report every key of this table that no read asked for; ``context`` follows
        "unknown key" (`` for kind "pwm"``)."""
        for key in self.raw:
            if key not in self.known:
                what = "unknown section" if not self.loc else "unknown key"
                self.problem(key, what + context + suggest(key, list(self.known)))


def _fallback(default: Any) -> Any:
    return None if default is REQUIRED else default


def _close(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {describe(close[0])}?)" if close else ""
