"""The real API key never leaves the token server: not in an answer to a device (a good one, a
refused one, a rate-limited one), not in its log, not in its error messages."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from pathlib import Path

from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.emulator.tls import make_certificate
from agent.token_server.devices import secret_hash
from tests.support.token_server import REAL_KEY, write_devices

SECRET = "device-secret-" + "s" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")]


async def request(port: int, cert: Path, auth: str) -> str:
    """The whole answer, headers and body, as the device sees it."""
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(f"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 15)
    writer.close()
    return answer.decode("latin-1")


async def test_the_planted_key_appears_in_no_answer_and_no_log(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=REAL_KEY, check_tokens=True, rest=True)
    async with Emulator(config) as emulator:
        (tmp_path / "api-key").write_text(REAL_KEY + "\n")
        write_devices(tmp_path / "devices.toml", kitchen=[secret_hash(SECRET)])
        pair = make_certificate(tmp_path, "127.0.0.1")
        port = free_port()
        (tmp_path / "token-server.toml").write_text(
            f'api_key_file = "api-key"\ndevices_file = "devices.toml"\n'
            f'model = "gemini-live-2.5-flash-preview"\nport = {port}\n'
            f'tls_cert_file = "{pair.cert_path}"\ntls_key_file = "{pair.key_path}"\n'
            f'per_device_burst = 2\napi_endpoint = "{emulator.rest_url}"\n')
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main())",
            "token-server", "--config", str(tmp_path / "token-server.toml"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "error"})
        good = "Basic " + base64.b64encode(f"kitchen:{SECRET}".encode()).decode()
        bad = "Basic " + base64.b64encode(b"kitchen:" + REAL_KEY.encode()).decode()
        answers = []
        async with asyncio.timeout(30):
            while True:
                try:
                    answers.append(await request(port, pair.cert_path, good))
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            for auth in (good, good, bad, "Bearer " + REAL_KEY, "Basic !!!"):
                answers.append(await request(port, pair.cert_path, auth))
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 15)
    logs = out.decode() + err.decode()
    assert process.returncode == 0, logs
    statuses = [a.split(" ", 2)[1] for a in answers]
    assert statuses == ["200", "200", "429", "401", "401", "401"]
    assert "auth_tokens/" in answers[0]
    assert "token_server.minted" in logs
    for leaked in forms(REAL_KEY) + forms(SECRET):
        assert leaked not in logs
        assert all(leaked not in answer for answer in answers)
    tokens = [line for line in answers[0].splitlines() if "auth_tokens/" in line]
    assert tokens and all(t.split("auth_tokens/")[1][:20] not in logs for t in tokens)
