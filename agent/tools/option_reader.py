"""What a tool kind reads its keys through, and how a key is named.

The config layer reads the ``[[tools]]`` tables; each kind reads its own keys through the
`OptionReader` it is handed (``agent.config.reader.Table`` is one). A read checks the type
and the range and, on a problem, reports it on the reader and returns the default, so one
pass finds every problem and the tools layer never needs a problem type of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Literal, Protocol, overload

__all__ = [
    "MAX_PIN",
    "MAX_SECONDS",
    "REQUIRED",
    "KeyPath",
    "OptionReader",
    "Required",
    "format_key",
]

KeyPath = tuple[str | int, ...]
"""Where a value is written in the config file: ``("tools", 2, "pin")``."""

MAX_PIN = 27  # BCM GPIO0..27 are on the 40-pin header of every supported Pi
MAX_SECONDS = 600.0  # the longest any action or timeout may last


class Required(enum.Enum):
    """The default that means "the key must be written"."""

    REQUIRED = "required"


REQUIRED: Literal[Required.REQUIRED] = Required.REQUIRED


def format_key(loc: KeyPath) -> str:
    """Render a key path as TOML readers write it: ``("tools", 2, "pin")`` -> ``tools[2].pin``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class OptionReader(Protocol):
    """Typed reads from one table of the config file.

    A read marks its key as known, checks it and returns its value; on a problem it reports
    it and returns the default (None for a `REQUIRED` key that is missing or wrong).
    """

    def has(self, key: str) -> bool:
        """Whether ``key`` is written (without reading it)."""
        ...

    def get(self, key: str, default: object = ...) -> object:
        """The raw value, unchecked (or ``default``; a missing required key is reported)."""
        ...

    @overload
    def text(self, key: str, default: str, choices: Sequence[str] = ..., *,
             allow_empty: bool = ...) -> str: ...

    @overload
    def text(self, key: str, default: Required | None = ..., choices: Sequence[str] = ...,
             *, allow_empty: bool = ...) -> str | None: ...

    def flag(self, key: str, default: bool) -> bool:
        """true or false."""
        ...

    @overload
    def number(self, key: str, default: float, lo: float, hi: float, *,
               lo_open: bool = ...) -> float: ...

    @overload
    def number(self, key: str, default: Required | None, lo: float, hi: float, *,
               lo_open: bool = ...) -> float | None: ...

    def pin(self, key: str, default: Required | None = ...) -> int | None:
        """A BCM GPIO number from 0 to `MAX_PIN`."""
        ...

    def pin_list(self, key: str) -> list[int]:
        """An array of BCM GPIO numbers (empty when absent); bad entries are reported."""
        ...

    def section(self, key: str) -> OptionReader:
        """The sub-table at ``key`` (an empty one when absent or not a table)."""
        ...

    def problem(self, key: str | int | KeyPath | None, message: str) -> None:
        """Report a problem at ``key`` of this table (a path below it, or None: the table)."""
        ...

    def invalid(self, key: str | int | KeyPath | None, requirement: str,
                value: object) -> None:
        """Report ``"<requirement>, got <value as written in TOML>"`` at ``key``."""
        ...

    def finish(self, context: str = ...) -> None:
        """Report every key of the table no read asked for (``context`` follows "unknown
        key")."""
        ...
