"""The agent's configuration: one TOML file read into a frozen, typed `AgentConfig`.

The file is ``/etc/edge-agent/agent.toml`` unless ``--config`` or ``$EDGE_AGENT_CONFIG`` names
another (`resolve_config_path`). `load_config` checks every key (type, range, unknown keys
with a "did you mean", missing files, pins claimed twice, secrets written inline) and raises
one `ConfigError` listing every problem with its file, line and key path::

    /etc/edge-agent/agent.toml:12: audio.chunk_ms: must be between 10 and 200, got 500

Typical use (``edge-agent run`` / ``check-config``)::

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    api_key = load_api_key(config)

On SIGHUP, `diff_sections` names the sections whose settings changed, so only those parts
restart. Every key is documented in ``agent.example.toml`` (`example_config_text`).

Line numbers: ``tomllib`` does not report them, so `agent.config_lines.KeyLines` scans the
text once more (tables, arrays of tables, dotted keys, inline tables, arrays). ``tomlkit``
would give positions too, but it is a pure-Python parser several times slower than
``tomllib`` and an extra dependency on a 512 MB board, for a 200-line scan.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from agent.config_errors import ConfigError, ConfigIssue, format_key
from agent.config_lines import KeyLines
from agent.config_model import (
    BACKENDS,
    ActivityDetectionConfig,
    AgentConfig,
    AudioConfig,
    AudioInput,
    AudioOutput,
    Backend,
    CameraConfig,
    CompressionConfig,
    CredentialsConfig,
    HealthConfig,
    LiveConfig,
    LoggingConfig,
    ReconnectConfig,
    SpeechGateConfig,
)
from agent.config_parse import SECTIONS, build_config
from agent.secrets import MissingCredentialError, load_api_key

__all__ = [
    "BACKENDS",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "SECTIONS",
    "ActivityDetectionConfig",
    "AgentConfig",
    "AudioConfig",
    "AudioInput",
    "AudioOutput",
    "Backend",
    "CameraConfig",
    "CompressionConfig",
    "ConfigError",
    "ConfigIssue",
    "CredentialsConfig",
    "HealthConfig",
    "LiveConfig",
    "LoggingConfig",
    "MissingCredentialError",
    "ReconnectConfig",
    "SpeechGateConfig",
    "diff_sections",
    "example_config_path",
    "example_config_text",
    "format_key",
    "load_api_key",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/agent.toml")
CONFIG_ENV = "EDGE_AGENT_CONFIG"
_EXAMPLE = "agent.example.toml"
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)")


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
        data = file.read_bytes()
    except FileNotFoundError:
        raise _file_error(file, "no such file (name another with --config or "
                                f"${CONFIG_ENV}; agent.example.toml documents every key)",
                          ) from None
    except PermissionError:
        raise _file_error(file, "permission denied (the service reads it as user edge-agent: "
                                "chown root:edge-agent and chmod 0640)") from None
    except IsADirectoryError:
        raise _file_error(file, "is a directory, not a config file") from None
    except OSError as exc:
        raise _file_error(file, f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue("not UTF-8 text", file=str(file), line=line)]) from None
    return parse_config(text, source=file)


def parse_config(text: str, *, source: str | os.PathLike[str] | None = None,
                 base_dir: str | os.PathLike[str] | None = None) -> AgentConfig:
    """Check a config given as text. Relative paths in it are taken from ``base_dir``
    (default: the folder of ``source``, else the current folder).

    Raises:
        ConfigError: with every problem found.
    """
    name = str(source) if source is not None else "<config>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = int(match.group(1)) if match else None
        message = _TOML_POSITION.sub("", message)
        raise ConfigError([ConfigIssue(f"not valid TOML: {message}", file=name, line=line)]
                          ) from None
    if base_dir is None:
        base_dir = Path(source).absolute().parent if source is not None else Path.cwd()
    problems: list[ConfigIssue] = []
    config = build_config(doc, base_dir=Path(base_dir),
                          source=Path(source) if source is not None else None,
                          problems=problems)
    if problems:
        lines = KeyLines(text)
        raise ConfigError(dataclasses.replace(p, file=name, line=lines.line(p.key_path))
                          for p in problems)
    return config


def diff_sections(old: AgentConfig, new: AgentConfig) -> set[str]:
    """The top-level sections whose settings differ (``"tools"`` apart from ``"gpio"``).

    The daemon restarts only the parts that read those sections on SIGHUP.
    """
    changed = {name for name in ("live", "reconnect", "audio", "camera", "logging", "health")
               if getattr(old, name) != getattr(new, name)}
    if dataclasses.replace(old.gpio, tools=()) != dataclasses.replace(new.gpio, tools=()):
        changed.add("gpio")
    if old.gpio.tools != new.gpio.tools:
        changed.add("tools")
    return changed


def example_config_path() -> Path:
    """The commented example config shipped inside the package."""
    return Path(str(resources.files("agent") / "data" / _EXAMPLE))


def example_config_text() -> str:
    """The text of the shipped example config (``edge-agent check-config`` accepts it)."""
    return (resources.files("agent") / "data" / _EXAMPLE).read_text(encoding="utf-8")


def _file_error(file: Path, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(message, file=str(file))])
