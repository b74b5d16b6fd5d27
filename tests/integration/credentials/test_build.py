"""[live.credentials] becomes the right providers, kept fresh, their values redacted."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from agent.build.credentials import KeyFileProvider, live_credentials
from agent.build.live import make_model
from agent.config import find_api_key, parse_config
from agent.live.credentials import KeptCredential, kept_credentials
from agent.live.firebase_tokens import AppCheckProvider, FirebaseAuthProvider
from agent.live.token_client import TokenServerProvider
from agent.live.vertex_auth import GoogleAuthProvider
from agent.logs import redact_text


def config(text: str, tmp: Path):  # type: ignore[no-untyped-def]
    parsed = parse_config(text, base_dir=tmp)
    assert parsed is not None
    return parsed


def key_file_provider(tmp_path: Path, mode: int) -> tuple[str, KeyFileProvider]:
    """The key, and the provider `live_credentials` makes of an ``api_key_file`` of ``mode``."""
    (tmp_path / "api-key").write_text("a-key-from-the-file-" + "k" * 20)
    (tmp_path / "api-key").chmod(mode)
    agent = config('[live.credentials]\napi_key_file = "api-key"\n', tmp_path)
    key, path = find_api_key(agent, environ={})
    creds = live_credentials(agent, key, path)
    assert isinstance(creds.primary, KeptCredential)
    assert isinstance(creds.primary.provider, KeyFileProvider)
    return key, creds.primary.provider


def test_a_key_file_becomes_a_provider_that_reads_it_again(tmp_path: Path) -> None:
    key, provider = key_file_provider(tmp_path, 0o600)
    assert provider.file.read() == key


async def test_a_systemd_credential_readable_by_its_group_is_not_reported(
        tmp_path: Path) -> None:
    # systemd 257 (Debian trixie) hands LoadCredential= files over as 0440, 252 (bookworm) as
    # 0400; the credentials directory is what keeps others out, so neither is "exposed".
    directory = tmp_path / "credentials"
    directory.mkdir(mode=0o500)
    key = "a-key-from-systemd-" + "s" * 20
    (directory / "api-key").write_text(key)
    (directory / "api-key").chmod(0o440)
    agent = config("", tmp_path)
    with capture_logs() as logs:
        found, path = find_api_key(agent, environ={"CREDENTIALS_DIRECTORY": str(directory)})
        creds = live_credentials(agent, found, path)
        assert isinstance(creds.primary, KeptCredential)
        await creds.primary.ready()  # the provider reads the file, as before each connection
        assert creds.primary() == key
    assert path == directory / "api-key"
    assert [e for e in logs if e["log_level"] == "warning"] == []


def test_a_key_file_others_can_read_is_still_reported_when_read_again(tmp_path: Path) -> None:
    key, provider = key_file_provider(tmp_path, 0o640)
    with capture_logs() as logs:
        assert provider.file.read() == key
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "config.key_file_exposed"]


def test_a_key_from_the_environment_stays_a_plain_key(tmp_path: Path) -> None:
    agent = config("", tmp_path)
    key, path = find_api_key(agent, environ={"GEMINI_API_KEY": "env-key-" + "e" * 30})
    assert live_credentials(agent, key, path).primary == "env-key-" + "e" * 30


def test_each_source_gets_its_provider(tmp_path: Path) -> None:
    vertex = config('[live]\nbackend = "vertex"\nproject_id = "p"\n'
                    '[live.credentials]\nsource = "google"\n', tmp_path)
    primary = live_credentials(vertex, "", None).primary
    assert isinstance(primary, KeptCredential)
    assert isinstance(primary.provider, GoogleAuthProvider)
    gemini = config('[live.credentials]\nsource = "token-server"\n'
                    'token_url = "https://t.example/token"\ndevice_id = "d"\n'
                    'device_secret_file = "s"\n', tmp_path)
    primary = live_credentials(gemini, "", None).primary
    assert isinstance(primary, KeptCredential)
    assert isinstance(primary.provider, TokenServerProvider)


async def test_firebase_tokens_reach_the_backend_and_are_redacted(tmp_path: Path) -> None:
    script = tmp_path / "app-check"
    script.write_text('#!/bin/sh\necho \'{"token": "app-check-token-value-123", '
                      '"ttlMillis": 3600000}\'\n')
    script.chmod(0o755)
    agent = config('[live]\nbackend = "firebase-vertex"\nproject_id = "p"\n'
                   f'[live.credentials]\napp_check_command = ["{script}"]\n'
                   'firebase_auth = "anonymous"\n', tmp_path)
    creds = live_credentials(agent, "AIzaFirebaseKey" + "f" * 24, None)
    assert isinstance(creds.app_check, KeptCredential)
    assert isinstance(creds.app_check.provider, AppCheckProvider)
    assert isinstance(creds.auth, KeptCredential)
    assert isinstance(creds.auth.provider, FirebaseAuthProvider)
    model = make_model(agent, creds.primary, app_check=creds.app_check, auth=creds.auth)
    assert kept_credentials(model.backend) == [creds.app_check, creds.auth]
    await creds.app_check.ready()
    assert "app-check-token-value-123" not in redact_text("sent app-check-token-value-123")


def test_the_key_the_daemon_was_given_is_watched_in_its_file(tmp_path: Path) -> None:
    from agent.build.parts import Builder

    (tmp_path / "api-key").write_text("a-key-from-the-file-" + "k" * 20)
    (tmp_path / "api-key").chmod(0o600)
    agent = config('[live.credentials]\napi_key_file = "api-key"\n', tmp_path)
    given = find_api_key(agent, environ={})[0]
    primary = Builder(api_key=given)._credential(agent).primary
    assert isinstance(primary, KeptCredential)
    assert isinstance(primary.provider, KeyFileProvider)
    other = Builder(api_key="a-key-from-elsewhere-" + "x" * 20)._credential(agent).primary
    assert other == "a-key-from-elsewhere-" + "x" * 20
