"""Loading the API key: from a file, a systemd credential, or the environment; never the TOML.

Places are tried in this order, and the first that holds a key wins:

1. ``live.credentials.api_key_file``: a file only root (or the service user) can read;
2. ``$CREDENTIALS_DIRECTORY/<live.credentials.credential>``: what the unit's
   ``LoadCredential=api-key:/etc/edge-agent/api-key`` hands the service (default name
   ``api-key``);
3. the environment variable ``live.credentials.env`` (default ``GEMINI_API_KEY``).

Wherever it comes from, the key is normalised and checked as it is loaded: a UTF-8 byte order
mark and surrounding whitespace are removed, and what is left must be printable ASCII without
spaces, at most `MAX_KEY_CHARS` long (a key that would be refused as an HTTP header is refused
here, with the file or variable named and never the key). A key file that group or others can
read still works but logs ``config.key_file_exposed``. The key is registered with the log
redaction, so it never appears in a log line or in ``STATUS=``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import structlog

from agent.config.files import FileProblem, read_bounded
from agent.config.model import AgentConfig, LiveConfig
from agent.config.problems import ConfigError, ConfigProblem, KeyPath
from agent.logs import register_secret

__all__ = ["EMULATOR_API_KEY", "MAX_KEY_CHARS", "MissingCredentialError",
           "credential_file_problems", "find_api_key", "load_api_key", "normalise_key",
           "read_secret_file"]

log = structlog.get_logger(__name__)

EMULATOR_API_KEY = "edge-agent-emulator"
"""What the ``emulator`` backend presents when no key is configured (the emulator accepts
any non-empty credential unless it was started with a key of its own)."""

MAX_KEY_CHARS = 4096
"""The longest key accepted (API keys have 39 characters, OAuth access tokens a few
hundred)."""
_BOM = "\ufeff"


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
    return find_api_key(config, environ=environ)[0]


def find_api_key(config: AgentConfig | LiveConfig, *,
                 environ: Mapping[str, str] | None = None) -> tuple[str, Path | None]:
    """`load_api_key`, and the file the key was read from (None: the environment or the
    emulator's default), which is read again when it changes."""
    live = config.live if isinstance(config, AgentConfig) else config
    source = config.source if isinstance(config, AgentConfig) else None
    env = os.environ if environ is None else environ
    creds = live.credentials
    if creds.source != "key":  # google-auth or the token server: no key on the device
        return "", None
    looked: list[str] = []
    key: str | None = None
    origin = ""
    path: Path | None = None
    if creds.api_key_file is not None:
        key = _read_key(creds.api_key_file, looked, source, check_mode=True,
                        key_path=("live", "credentials", "api_key_file"))
        origin, path = "file", creds.api_key_file
    if key is None and creds.credential:
        directory = env.get("CREDENTIALS_DIRECTORY")
        if directory:
            path = Path(directory) / creds.credential
            key = _read_key(path, looked, source,
                            check_mode=False, key_path=("live", "credentials", "credential"))
            origin = "credential"
        else:
            looked.append(f"systemd credential {creds.credential!r} ($CREDENTIALS_DIRECTORY "
                          "is not set: the unit's LoadCredential= sets it)")
    if key is None and creds.env:
        value = env.get(creds.env, "")
        where = f"environment variable {creds.env}"
        value = normalise_key(value[: MAX_KEY_CHARS * 2], where, source,
                              ("live", "credentials", "env"))
        if value:
            key, origin, path = value, "environment", None
        else:
            looked.append(f"environment variable {creds.env} ("
                          + ("empty" if creds.env in env else "not set") + ")")
    if key is None:
        if live.backend == "emulator":
            return EMULATOR_API_KEY, None
        raise MissingCredentialError(looked, source)
    register_secret(key)
    log.info("config.api_key_loaded", origin=origin, backend=live.backend)
    return key, path


def normalise_key(raw: str, where: str, source: Path | None, key_path: KeyPath) -> str:
    """``raw`` without a byte order mark and surrounding whitespace ("" when nothing is
    left).

    Raises:
        ConfigError: what is left is not a key (the message names ``where``, never the key).
    """
    text = raw.strip().removeprefix(_BOM).strip()
    if not text:
        return ""
    if len(text) > MAX_KEY_CHARS:
        raise _key_error(source, key_path, f"{where}: longer than {MAX_KEY_CHARS} characters; "
                                           "it must hold the key alone")
    if len(text.split()) != 1:
        raise _key_error(source, key_path, f"{where}: must hold the key alone, on one line")
    bad = next((i for i, ch in enumerate(text) if not "!" <= ch <= "~"), None)
    if bad is not None:
        raise _key_error(source, key_path,
                         f"{where}: character {bad + 1} of the key is not printable ASCII "
                         "(save it as plain text, the key alone)")
    return text


def read_secret_file(path: Path, key_path: KeyPath, *, what: str = "key file",
                     check_mode: bool = True) -> str:
    """A secret read from ``path`` (bounded, normalised as a key is); ``check_mode``: warn
    when group or others may read it (off for a systemd credential, which its directory
    guards: systemd 257 gives the file itself mode 0440).

    Raises:
        ConfigError: missing, unreadable, empty, or not a key (the message never quotes it).
    """
    looked: list[str] = []
    text = _read_key(path, looked, None, check_mode=check_mode, key_path=key_path, what=what)
    if text is None:
        raise _key_error(None, key_path, looked[0] if looked else f"{path}: empty")
    return text


def credential_file_problems(config: AgentConfig) -> list[ConfigProblem]:
    """What is wrong with the credential files ``config`` names besides the API key: the
    service account key, the device secret, the Firebase custom token (for check-config)."""
    creds = config.live.credentials
    wanted: list[tuple[Path | None, str, str]] = [
        (creds.service_account_file, "service_account_file", "service account key file"),
        (creds.device_secret_file, "device_secret_file", "device secret file"),
        (creds.custom_token_file, "custom_token_file", "custom token file"),
        (creds.token_ca_file, "token_ca_file", "CA file"),
    ]
    problems: list[ConfigProblem] = []
    for path, key, what in wanted:
        if path is None:
            continue
        try:
            if key in ("service_account_file", "token_ca_file"):
                read_bounded(path, 64 * 1024, what=what)
            else:
                read_secret_file(path, ("live", "credentials", key), what=what)
        except FileProblem as exc:
            problems.append(ConfigProblem(f"{path}: {exc}", ("live", "credentials", key),
                                          file=str(config.source) if config.source else None))
        except ConfigError as exc:
            problems += exc.problems
    return problems


def _read_key(path: Path, looked: list[str], source: Path | None, *,
              check_mode: bool, key_path: KeyPath, what: str = "key file") -> str | None:
    try:
        data = read_bounded(path, MAX_KEY_CHARS * 2, what=what)
        mode = path.stat().st_mode
    except FileProblem as exc:
        if exc.missing:
            looked.append(f"{path} (no such file)")
            return None
        reason = str(exc)
        if reason == "permission denied":
            reason += (" (the service reads it as user edge-agent; or use LoadCredential= and "
                       "live.credentials.credential)")
        raise _key_error(source, key_path, f"{path}: {reason}") from None
    except OSError as exc:
        raise _key_error(source, key_path, f"{path}: cannot read: {exc.strerror}") from None
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _key_error(source, key_path, f"{path}: not a text file") from None
    text = normalise_key(decoded, str(path), source, key_path)
    if not text:
        looked.append(f"{path} (empty)")
        return None
    if check_mode and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("config.key_file_exposed", path=str(path), mode=oct(stat.S_IMODE(mode)),
                    fix=f"chmod 600 {path}")
    return text


def _key_error(source: Path | None, key_path: KeyPath, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(message, key_path, file=str(source) if source else None)])
