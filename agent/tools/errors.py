"""Exceptions of the tools layer.

Two families: configuration problems found before anything is claimed (`ToolConfigError`,
which carries every problem with its key path), and errors met while serving a call
(`ToolError` and its subclasses), whose message is what the model reads in the function
response.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ArgumentError",
    "ConfigProblem",
    "GpioError",
    "ToolConfigError",
    "ToolError",
    "format_key",
]

KeyPath = tuple[str | int, ...]


def format_key(loc: KeyPath) -> str:
    """Render a key path as TOML readers write it: ``("tools", 2, "pin")`` -> ``tools[2].pin``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the GPIO or tools configuration.

    ``loc`` is the key path inside the config file (``("tools", 2, "pin")``), so the config
    layer can add the file name and line; ``key`` renders it (``tools[2].pin``).
    """

    loc: KeyPath
    message: str

    @property
    def key(self) -> str:
        return format_key(self.loc)

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.loc else self.message


class ToolConfigError(ValueError):
    """The tools or GPIO configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the GPIO/tools config:\n{lines}")


class ToolError(Exception):
    """A call could not be carried out; the message is written for the model to act on.

    Custom handlers raise it to answer with a clear ``{"error": ...}`` instead of a generic
    failure message.
    """


class ArgumentError(ToolError):
    """The model's arguments do not match the tool's declared schema or limits."""


class GpioError(ToolError):
    """A pin could not be claimed or driven (no GPIO here, pin busy, invalid pin)."""
