"""Reading a config file: where it is, its bytes, its TOML, and the line of every problem.

Line numbers: ``tomllib`` does not report them, so `agent.config.lines.KeyLines` scans the
text once more (tables, arrays of tables, dotted keys, inline tables, arrays). ``tomlkit``
would give positions too, but it is a pure-Python parser several times slower than
``tomllib`` and an extra dependency on a 512 MB board, for a 200-line scan.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from agent.config.document import build_config
from agent.config.files import FileProblem, read_bounded
from agent.config.lines import KeyLines
from agent.config.model import AgentConfig
from agent.config.problems import ConfigError, ConfigProblem
from agent.config.syntax import parser_limit_problem, syntax_problem

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "MAX_CONFIG_BYTES",
    "example_config_path",
    "example_config_text",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/agent.toml")
CONFIG_ENV = "EDGE_AGENT_CONFIG"
_EXAMPLE = "agent.example.toml"
MAX_CONFIG_BYTES = 1024 * 1024
"""The largest config file read (the commented example is about 20 KiB)."""


def resolve_config_path(path: str | os.PathLike[str] | None = None,
                        environ: Mapping[str, str] | None = None) -> Path:
    """The config file to read: ``path`` (``--config``), else ``$EDGE_AGENT_CONFIG``, else
    ``/etc/edge-agent/agent.toml``."""
    if path is not None and str(path):
        return Path(path)
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None, *,
                environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and check the config file (see `resolve_config_path`).

    Raises:
        ConfigError: with every problem found; nothing is returned half-checked.
    """
    file = resolve_config_path(path, environ)
    try:
        data = read_bounded(file, MAX_CONFIG_BYTES, what="config file")
    except FileProblem as exc:
        reason = str(exc)
        if exc.missing:
            reason += (f" (name another with --config or ${CONFIG_ENV}; agent.example.toml "
                       "documents every key)")
        elif reason == "permission denied":
            reason += (" (the service reads it as user edge-agent: chown root:edge-agent and "
                       "chmod 0640)")
        raise _file_error(file, reason) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem("not UTF-8 text", file=str(file), line=line)]) from None
    return parse_config(text, source=file)


def parse_config(text: str, *, source: str | os.PathLike[str] | None = None,
                 base_dir: str | os.PathLike[str] | None = None) -> AgentConfig:
    """Check a config given as text. Relative paths in it are taken from ``base_dir``
    (default: the folder of ``source``, else the current folder).

    Raises:
        ConfigError: with every problem found.
    """
    name = str(source) if source is not None else "<config>"
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(f"is larger than {MAX_CONFIG_BYTES // 1024} KiB: "
                                         "not a config file", file=name)])
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([syntax_problem(exc, text, name)]) from None
    except (ValueError, RecursionError) as exc:  # what tomllib's parser does not catch
        raise ConfigError([parser_limit_problem(exc, text, name)]) from None
    if base_dir is None:
        base_dir = Path(source).absolute().parent if source is not None else Path.cwd()
    problems: list[ConfigProblem] = []
    config = build_config(doc, base_dir=Path(base_dir),
                          source=Path(source) if source is not None else None,
                          problems=problems)
    if problems:
        lines = KeyLines(text)
        raise ConfigError(dataclasses.replace(p, file=name, line=lines.line(p.key_path))
                          for p in problems)
    return config


def example_config_path() -> Path:
    """The commented example config shipped inside the package."""
    return Path(str(resources.files("agent") / "data" / _EXAMPLE))


def example_config_text() -> str:
    """The text of the shipped example config (``edge-agent check-config`` accepts it)."""
    return (resources.files("agent") / "data" / _EXAMPLE).read_text(encoding="utf-8")


def _file_error(file: Path, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(message, file=str(file))])
