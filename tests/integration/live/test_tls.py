"""The shared TLS context: one for every connection, CAs looked up in a hashed directory only
when a handshake needs them, an explicit SSL_CERT_FILE honoured; real handshakes against the
emulator's TLS listener."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.emulator import Emulator, EmulatorConfig
from agent.live import tls
from agent.live.errors import LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel

KEY = "tls-test-key"


@pytest.fixture(autouse=True)
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    tls.client_context.cache_clear()
    yield
    tls.client_context.cache_clear()


def hashed_directory(tmp_path: Path, cert: Path) -> Path:
    """A CA directory as update-ca-certificates leaves it: the certificate under its subject
    hash (computed by OpenSSL itself)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(cert)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (directory / f"{subject_hash}.0").symlink_to(cert)
    return directory


async def connect_once(emu: Emulator) -> None:
    backend = GeminiDeveloperBackend(api_key=KEY, endpoint=emu.url)
    session = await LiveGenerativeModel(backend=backend, model="gemini-live-2.5-flash").connect()
    await session.close()


async def test_a_hashed_ca_directory_is_read_lazily_and_verifies_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Emulator(EmulatorConfig(tls=True, api_key=KEY)) as emu:
        assert emu.cert_path is not None
        monkeypatch.setenv("SSL_CERT_DIR", str(hashed_directory(tmp_path, emu.cert_path)))
        context = tls.client_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] == 0  # nothing parsed up front
        await connect_once(emu)
        await connect_once(emu)
        assert context.cert_store_stats()["x509_ca"] == 1  # only the CA the handshake needed
        assert tls.client_context() is context  # one context for every connection


async def test_a_server_whose_ca_is_not_trusted_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "0123abcd.0").write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    async with Emulator(EmulatorConfig(tls=True, api_key=KEY)) as emu:
        with pytest.raises(LiveSessionError, match=r"CERTIFICATE_VERIFY_FAILED"):
            await connect_once(emu)


async def test_an_explicit_ssl_cert_file_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Emulator(EmulatorConfig(tls=True, api_key=KEY)) as emu:
        assert emu.cert_path is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(emu.cert_path))
        monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")
        assert tls.client_context().cert_store_stats()["x509_ca"] == 1
        await connect_once(emu)


def test_without_a_hashed_directory_the_default_store_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "ca-bundle.crt").write_text("")
    monkeypatch.setenv("SSL_CERT_DIR", str(plain))
    default = ssl.create_default_context().cert_store_stats()
    assert tls.client_context().cert_store_stats() == default
