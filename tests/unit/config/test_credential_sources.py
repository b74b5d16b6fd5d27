"""[live.credentials] beyond the key: google-auth, the token server, Firebase's tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import find_api_key, load_config
from tests.unit.config.conftest import WriteConfig

Problems = Callable[[str], list[str]]


def test_vertex_with_google_auth_needs_no_key(write_config: WriteConfig,
                                              tmp_path: Path) -> None:
    config = load_config(write_config('''
        [live]
        backend = "vertex"
        project_id = "p"
        [live.credentials]
        source = "google"
        service_account_file = "sa.json"
    '''))
    creds = config.live.credentials
    assert (creds.source, creds.service_account_file) == ("google", tmp_path / "sa.json")
    assert find_api_key(config, environ={}) == ("", None)


def test_the_token_server_settings_are_read(write_config: WriteConfig, tmp_path: Path) -> None:
    config = load_config(write_config('''
        [live.credentials]
        source = "token-server"
        token_url = "https://tokens.example.net/token"
        device_id = "kitchen"
        device_secret_file = "/etc/edge-agent/device-secret"
        token_ca_file = "ca.pem"
    '''))
    creds = config.live.credentials
    assert creds.token_url == "https://tokens.example.net/token"
    assert creds.device_id == "kitchen"
    assert creds.device_secret_file == Path("/etc/edge-agent/device-secret")
    assert creds.token_ca_file == tmp_path / "ca.pem"


def test_firebase_tokens_are_read(write_config: WriteConfig) -> None:
    config = load_config(write_config('''
        [live]
        backend = "firebase-google"
        project_id = "p"
        [live.credentials]
        app_check_command = ["/usr/local/bin/app-check-token", "--app", "1:2:web:3"]
        firebase_auth = "custom-token"
        custom_token_file = "/etc/edge-agent/custom-token"
        refresh_ahead_s = 120
    '''))
    creds = config.live.credentials
    assert creds.app_check_command == ("/usr/local/bin/app-check-token", "--app", "1:2:web:3")
    assert creds.firebase_auth == "custom-token"
    assert creds.refresh_ahead_s == 120.0


@pytest.mark.parametrize(("text", "expected"), [
    ('[live]\nbackend = "gemini"\n[live.credentials]\nsource = "google"',
     'agent.toml:4: live.credentials.source: "google" (google-auth access tokens) is for '
     'backend = "vertex"'),
    ('[live.credentials]\nsource = "token-server"',
     'agent.toml:1: live.credentials.token_url: is required with source = "token-server"'),
    ('[live.credentials]\ntoken_url = "https://t.example/token"',
     'agent.toml:2: live.credentials.token_url: is only read with source = "token-server"'),
    ('[live.credentials]\nsource = "token-server"\ntoken_url = "http://t.example/token"\n'
     'device_id = "d"\ndevice_secret_file = "s"',
     "agent.toml:3: live.credentials.token_url: must be an https:// URL (http:// only to "
     '127.0.0.1 or localhost), got "http://t.example/token"'),
    ('[live.credentials]\nsource = "token-server"\n'
     'token_url = "https://t.example/token?key=abc"\ndevice_id = "d"\ndevice_secret_file = "s"',
     "agent.toml:3: live.credentials.token_url: must be an https:// URL (http:// only to "
     "127.0.0.1 or localhost), with no credential in it (those go in files)"),
    ('[live.credentials]\nsource = "token-server"\ntoken_url = "https://t.example/token"\n'
     'device_id = "no spaces"\ndevice_secret_file = "s"',
     'agent.toml:4: live.credentials.device_id: must be 1-64 letters, digits, "_", "." or "-", '
     'got "no spaces"'),
    ('[live.credentials]\napp_check_url = "https://a.example/x"',
     "agent.toml:2: live.credentials.app_check_url: is only used with the firebase-google and "
     "firebase-vertex backends"),
    ('[live]\nbackend = "firebase-google"\nproject_id = "p"\n[live.credentials]\n'
     'app_check_command = ["relative/path"]',
     'agent.toml:5: live.credentials.app_check_command: the program must be an absolute path, '
     'got "relative/path"'),
    ('[live]\nbackend = "firebase-google"\nproject_id = "p"\n[live.credentials]\n'
     'firebase_auth = "custom-token"',
     'agent.toml:4: live.credentials.custom_token_file: is required with firebase_auth = '
     '"custom-token"'),
    ('[live.credentials]\nsource = "oauth"',
     'agent.toml:2: live.credentials.source: must be one of "key", "google", "token-server", '
     'got "oauth"'),
])
def test_mistakes_are_named_with_their_line(problems_of: Problems, text: str,
                                             expected: str) -> None:
    assert expected in problems_of(text)


@pytest.mark.usefixtures("restore_logging")  # check-config sets up logging
def test_check_config_names_a_missing_device_secret(write_config: WriteConfig,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    path = write_config('''
        [live.credentials]
        source = "token-server"
        token_url = "https://tokens.example.net/token"
        device_id = "kitchen"
        device_secret_file = "missing-secret"
    ''')
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr()
    assert "credentials: token-server" in out.out
    assert "live.credentials.device_secret_file" in out.err
    assert "no such file" in out.err


@pytest.mark.usefixtures("restore_logging")
def test_check_config_exits_2_on_a_bad_credential_setting(
        write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    path = write_config('[live.credentials]\nsource = "token-server"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    assert "agent.toml:1: live.credentials.token_url: is required" in capsys.readouterr().err
