"""Config problems: every problem found in a config file, each with file, line and key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The tools layer reads its keys through the same paths, so it defines how they are named.
from agent.tools.option_reader import KeyPath, format_key

__all__ = ["ConfigError", "ConfigProblem", "KeyPath", "format_key"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file.

    ``str()`` gives the line a user reads, for example
    ``/etc/edge-agent/agent.toml:12: audio.chunk_ms: must be between 10 and 200, got 500``;
    parts that are unknown (no line for a missing file, no key for a syntax error) are left out.
    """

    message: str
    key_path: KeyPath = ()
    file: str | None = None
    line: int | None = None

    @property
    def key(self) -> str:
        """The key path rendered as ``section.key`` / ``tools[2].pin`` ("" for the whole file)."""
        return format_key(self.key_path)

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line is not None:
            where += f":{self.line}"
        parts = [p for p in (where, self.key) if p]
        return ": ".join([*parts, self.message])


class ConfigError(Exception):
    """The config is invalid. ``problems`` holds every problem found, in file order.

    Nothing is built from a config that raised this: the agent never starts half-configured.
    ``str()`` is one problem per line, ready to print.
    """

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = sorted(
            problems, key=lambda p: (p.file or "", p.line if p.line is not None else 0))
        super().__init__("\n".join(str(p) for p in self.problems))
