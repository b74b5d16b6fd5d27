"""A token server in a thread of the test, in front of the emulator's token endpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.emulator.tls import make_certificate
from agent.token_server.devices import Devices, secret_hash
from agent.token_server.mint import Minter
from agent.token_server.server import TokenService, make_server
from agent.token_server.settings import Settings

REAL_KEY = "AIzaSyPLANTEDrealKEYforTHEtokenSERVER0001"


@dataclass
class Running:
    url: str
    service: TokenService
    settings: Settings
    cert: Path
    device_secret_file: Path
    devices_file: Path


def write_devices(path: Path, **hashes: list[str]) -> None:
    lines = []
    for device, values in hashes.items():
        quoted = ", ".join(f'"{v}"' for v in values)
        lines += [f"[devices.{device}]", f"secret_sha256 = [{quoted}]"]
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def token_server(tmp: Path, api_endpoint: str, **overrides: object) -> Iterator[Running]:
    """A TLS token server with one device, ``kitchen``, whose secret is in a file."""
    key_file = tmp / "api-key"
    key_file.write_text(REAL_KEY + "\n")
    secret = secrets.token_urlsafe(32)
    secret_file = tmp / "device-secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    devices_file = tmp / "devices.toml"
    write_devices(devices_file, kitchen=[secret_hash(secret)])
    pair = make_certificate(tmp, "127.0.0.1")
    settings = Settings(api_key_file=key_file, devices_file=devices_file,
                        model="gemini-live-2.5-flash-preview", port=0,
                        tls_cert_file=pair.cert_path, tls_key_file=pair.key_path,
                        api_endpoint=api_endpoint)
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    service = TokenService(settings, Devices(devices_file), Minter(settings).mint)
    server = make_server(settings, service)
    thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield Running(f"https://127.0.0.1:{port}/token", service, settings, pair.cert_path,
                      secret_file, devices_file)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
