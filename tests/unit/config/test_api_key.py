"""The API key: from a key file, a systemd credential or the environment, never the TOML."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from agent.config import (
    EMULATOR_API_KEY,
    ConfigError,
    MissingCredentialError,
    load_api_key,
    load_config,
)
from agent.logs import configure_logging
from tests.unit.config.conftest import WriteConfig

KEY = "test-key-" + "0123456789abcdef"


def _key_file(folder: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_key_file_first(write_config: WriteConfig, tmp_path: Path) -> None:
    _key_file(tmp_path, "key", KEY + "\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds, "api-key", "from-credential-dir")
    config = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "from-env"}
    assert load_api_key(config, environ=env) == KEY


def test_systemd_credential_before_the_environment(write_config: WriteConfig,
                                                   tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds, "gemini", KEY)
    config = load_config(write_config('[live.credentials]\ncredential = "gemini"\n'))
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "from-env"}
    assert load_api_key(config, environ=env) == KEY


def test_environment_last_with_a_configurable_name(write_config: WriteConfig) -> None:
    config = load_config(write_config('[live.credentials]\nenv = "MY_KEY"\n'))
    assert load_api_key(config, environ={"MY_KEY": f"  {KEY}\n"}) == KEY
    assert load_api_key(load_config(write_config("")), environ={"GEMINI_API_KEY": KEY}) == KEY


def test_a_missing_key_names_every_place_looked(write_config: WriteConfig,
                                                tmp_path: Path) -> None:
    _key_file(tmp_path, "empty-key", "\n")
    config = load_config(write_config('[live.credentials]\napi_key_file = "empty-key"\n'))
    with pytest.raises(MissingCredentialError) as info:
        load_api_key(config, environ={"GEMINI_API_KEY": ""})
    assert isinstance(info.value, ConfigError)
    assert info.value.places == [
        f"{tmp_path}/empty-key (empty)",
        "systemd credential 'api-key' ($CREDENTIALS_DIRECTORY is not set: the unit's "
        "LoadCredential= sets it)",
        "environment variable GEMINI_API_KEY (empty)",
    ]
    message = str(info.value)
    assert message.startswith(f"{config.source}: live.credentials: no API key found; looked in")
    assert "never in the config file" in message


def test_a_missing_key_file_and_credential_are_listed(write_config: WriteConfig,
                                                      tmp_path: Path) -> None:
    config = load_config(write_config('[live.credentials]\napi_key_file = "/nonexistent/k"\n'))
    with pytest.raises(MissingCredentialError) as info:
        load_api_key(config, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert info.value.places == [
        "/nonexistent/k (no such file)",
        f"{tmp_path}/api-key (no such file)",
        "environment variable GEMINI_API_KEY (not set)",
    ]


def test_the_emulator_needs_no_key(write_config: WriteConfig) -> None:
    config = load_config(write_config('[live]\nbackend = "emulator"\n'))
    assert load_api_key(config, environ={}) == EMULATOR_API_KEY
    assert load_api_key(config, environ={"GEMINI_API_KEY": KEY}) == KEY


def test_a_key_file_others_can_read_warns(write_config: WriteConfig, tmp_path: Path) -> None:
    key_file = _key_file(tmp_path, "key", KEY, mode=0o644)
    config = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    with capture_logs() as logs:
        assert load_api_key(config, environ={}) == KEY
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings == [{"event": "config.key_file_exposed", "log_level": "warning",
                         "path": str(key_file), "mode": "0o644",
                         "fix": f"chmod 600 {key_file}"}]
    key_file.chmod(0o600)
    with capture_logs() as logs:
        load_api_key(config, environ={})
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_a_key_file_with_more_than_the_key_is_refused(write_config: WriteConfig,
                                                      tmp_path: Path) -> None:
    _key_file(tmp_path, "key", f"GEMINI_API_KEY={KEY}\nother line\n")
    config = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    with pytest.raises(ConfigError, match="must hold the key alone, on one line") as info:
        load_api_key(config, environ={})
    assert KEY not in str(info.value)


@pytest.mark.usefixtures("restore_logging")
def test_a_loaded_key_never_reaches_the_logs(write_config: WriteConfig) -> None:
    secret = "k3y-" + "that-matches-no-pattern-42"
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    load_api_key(load_config(write_config("")), environ={"GEMINI_API_KEY": secret})
    structlog.get_logger("test").info("session.debug", note=f"sent header with {secret}")
    text = stream.getvalue()
    assert "config.api_key_loaded" in text and "[REDACTED]" in text
    assert secret not in text


# ------------------------------------------------------------------ normalised when loaded


@pytest.mark.parametrize("saved", [
    "\ufeff" + KEY,  # Notepad's UTF-8 with a byte order mark
    "\ufeff" + KEY + "\r\n",
    f"  {KEY}\n\n",
    "\ufeff  " + KEY + "\t\n",
])
def test_a_key_file_is_normalised_when_loaded(write_config: WriteConfig, tmp_path: Path,
                                              saved: str) -> None:
    """A byte order mark and whitespace around the key go; websockets would refuse them in
    a header, and the refusal would carry the key."""
    _key_file(tmp_path, "key", saved)
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds, "api-key", saved)
    by_file = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    assert load_api_key(by_file, environ={}) == KEY
    by_credential = load_config(write_config(""))
    assert load_api_key(by_credential, environ={"CREDENTIALS_DIRECTORY": str(creds)}) == KEY
    assert load_api_key(by_credential, environ={"GEMINI_API_KEY": saved}) == KEY


@pytest.mark.parametrize(("saved", "reason"), [
    (KEY[:8] + "\u00e9" + KEY[8:], "character 9 of the key is not printable ASCII"),
    (KEY[:8] + "\x00" + KEY[8:], "character 9 of the key is not printable ASCII"),
    (KEY[:8] + "\x7f" + KEY[8:], "character 9 of the key is not printable ASCII"),
    (KEY[:8] + "\u200b" + KEY[8:], "character 9 of the key is not printable ASCII"),
    (KEY + " " + KEY, "must hold the key alone, on one line"),
    (KEY * 300, "longer than 4096 characters"),
])
def test_a_key_that_is_not_printable_ascii_names_the_place_never_the_key(
        write_config: WriteConfig, tmp_path: Path, saved: str, reason: str) -> None:
    key_file = _key_file(tmp_path, "key", saved)
    by_file = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    with pytest.raises(ConfigError) as info:
        load_api_key(by_file, environ={})
    assert f"{key_file}: {reason}" in str(info.value)
    by_env = load_config(write_config(""))
    with pytest.raises(ConfigError) as env_info:
        load_api_key(by_env, environ={"GEMINI_API_KEY": saved})
    assert f"environment variable GEMINI_API_KEY: {reason}" in str(env_info.value)
    for message in (str(info.value), str(env_info.value)):
        assert KEY not in message and KEY[:12] not in message


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_a_key_file_is_read_bounded_and_never_blocks(write_config: WriteConfig, tmp_path: Path,
                                                     kind: str) -> None:
    import os

    path = tmp_path / "key"
    if kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path, 0o600)  # no writer: a blocking open would wait for ever
    else:
        path.write_bytes(b"k" * (1 << 20))
        path.chmod(0o600)
    config = load_config(write_config('[live.credentials]\napi_key_file = "key"\n'))
    with pytest.raises(ConfigError, match=r"not a regular file|larger than") as info:
        load_api_key(config, environ={})
    assert str(info.value).count("\n") == 0
