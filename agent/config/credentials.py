"""Loading the API key: from a file, a systemd credential, or the environment; never the TOML.

Places are tried in this order, and the first that holds a key wins:

1. ``live.credentials.api_key_file``: a file only root (or the service user) can read;
2. ``$CREDENTIALS_DIRECTORY/<live.credentials.credential>``: what the unit's
   ``LoadCredential=api-key:/etc/edge-agent/api-key`` hands the service (default name
   ``api-key``);
3. the environment variable ``live.credentials.env`` (default ``GEMINI_API_KEY``).

A key file that group or others can read still works but logs ``config.key_file_exposed``.
The key is registered with the log redaction, so it never appears in a log line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import structlog

from agent.config.model import AgentConfig, LiveConfig
from agent.config.problems import ConfigError, ConfigProblem, KeyPath
from agent.logs import register_secret

__all__ = ["EMULATOR_API_KEY", "MissingCredentialError", "load_api_key"]

log = structlog.get_logger(__name__)

EMULATOR_API_KEY = "edge-agent-emulator"
"""What the ``emulator`` backend presents when no key is configured (the emulator accepts
any non-empty credential unless it was started with a key of its own)."""


class MissingCredentialError(ConfigError):
    """No configured place holds an API key; ``places`` says where it looked and why each
    failed."""

    def __init__(self, places: list[str], source: Path | None) -> None:
        self.places = places
        message = ("no API key found; looked in: " + "; ".join(places)
                   + ". Put the key in one of them (never in the config file)")
        super().__init__([ConfigProblem(message, ("live", "credentials"),
                                      file=str(source) if source else None)])


def load_api_key(config: AgentConfig | LiveConfig, *,
                 environ: Mapping[str, str] | None = None) -> str:
    """The API key (or Vertex access token) for ``config``'s backend.

    Raises:
        MissingCredentialError: no place holds a key (except for the ``emulator`` backend,
            which gets `EMULATOR_API_KEY`).
        ConfigError: a key file exists but cannot be used (unreadable, several lines).
    """
    live = config.live if isinstance(config, AgentConfig) else config
    source = config.source if isinstance(config, AgentConfig) else None
    env = os.environ if environ is None else environ
    creds = live.credentials
    looked: list[str] = []
    key: str | None = None
    origin = ""
    if creds.api_key_file is not None:
        key = _read_key(creds.api_key_file, looked, source, check_mode=True,
                        key_path=("live", "credentials", "api_key_file"))
        origin = "file"
    if key is None and creds.credential:
        directory = env.get("CREDENTIALS_DIRECTORY")
        if directory:
            key = _read_key(Path(directory) / creds.credential, looked, source,
                            check_mode=False, key_path=("live", "credentials", "credential"))
            origin = "credential"
        else:
            looked.append(f"systemd credential {creds.credential!r} ($CREDENTIALS_DIRECTORY "
                          "is not set: the unit's LoadCredential= sets it)")
    if key is None and creds.env:
        value = env.get(creds.env, "").strip()
        if value:
            key, origin = value, "environment"
        else:
            looked.append(f"environment variable {creds.env} ("
                          + ("empty" if creds.env in env else "not set") + ")")
    if key is None:
        if live.backend == "emulator":
            return EMULATOR_API_KEY
        raise MissingCredentialError(looked, source)
    register_secret(key)
    log.info("config.api_key_loaded", origin=origin, backend=live.backend)
    return key


def _read_key(path: Path, looked: list[str], source: Path | None, *,
              check_mode: bool, key_path: KeyPath) -> str | None:
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(64 * 1024)
    except FileNotFoundError:
        looked.append(f"{path} (no such file)")
        return None
    except PermissionError:
        raise _key_error(source, key_path,
                         f"{path}: permission denied (the service reads it as user edge-agent; "
                         "or use LoadCredential= and live.credentials.credential)") from None
    except OSError as exc:
        raise _key_error(source, key_path, f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise _key_error(source, key_path, f"{path}: is a directory, not a key file")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _key_error(source, key_path, f"{path}: not a text file") from None
    if not text:
        looked.append(f"{path} (empty)")
        return None
    if len(text.split()) != 1:
        raise _key_error(source, key_path, f"{path}: must hold the key alone, on one line")
    if check_mode and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("config.key_file_exposed", path=str(path), mode=oct(stat.S_IMODE(mode)),
                    fix=f"chmod 600 {path}")
    return text


def _key_error(source: Path | None, key_path: KeyPath, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(message, key_path, file=str(source) if source else None)])
