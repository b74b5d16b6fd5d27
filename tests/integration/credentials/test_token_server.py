"""Ephemeral tokens: the token server mints one per device connection with google-genai's own
``auth_tokens.create`` (against the emulator's token endpoint), and the emulator enforces
uses, ``expire_time`` and ``newSessionExpireTime``."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault, FaultKind
from agent.emulator.server import Emulator
from agent.live.credentials import KeptCredential
from agent.live.errors import LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState
from agent.live.token_client import TokenServerProvider
from tests.support.token_server import REAL_KEY, Running, token_server

FAST = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)
MODEL = "gemini-live-2.5-flash-preview"


@pytest.fixture
async def emulator() -> Any:
    config = EmulatorConfig(api_key=REAL_KEY, check_tokens=True, rest=True)
    async with Emulator(config) as running:
        yield running


def provider(server: Running, secret_file: Path | None = None) -> TokenServerProvider:
    path = secret_file or server.device_secret_file
    return TokenServerProvider(server.url, "kitchen", lambda: path.read_text().strip(),
                               secret_file=path, ca_file=server.cert)


def session(emulator: Emulator, kept: KeptCredential | str,
            model: str = MODEL) -> ResilientSession:
    backend = GeminiDeveloperBackend(api_key=kept, endpoint=emulator.url)
    return ResilientSession(LiveGenerativeModel(backend=backend, model=model), FAST)


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10.0):
        while not predicate():
            await asyncio.sleep(0.01)


async def post(server: Running, auth: str | None) -> tuple[int, dict[str, Any], str]:
    """A raw request: status, JSON answer and the whole answer text (in a thread: the
    emulator's token endpoint is served by this loop)."""
    return await asyncio.to_thread(post_now, server, auth)


def post_now(server: Running, auth: str | None) -> tuple[int, dict[str, Any], str]:
    context = ssl.create_default_context(cafile=str(server.cert))
    request = urllib.request.Request(server.url, data=b"", method="POST")
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw), str(answer.headers) + raw.decode()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw), str(exc.headers) + raw.decode()


def basic(device: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{device}:{secret}".encode()).decode()


async def test_each_connection_gets_a_fresh_single_use_token(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        kept = KeptCredential(provider(server))
        live = session(emulator, kept)
        async with live:
            await asyncio.wait_for(live.wait_live(), 10)
            first = kept()
            assert first.startswith("auth_tokens/")
            for n in range(2):
                emulator.inject(Fault(FaultKind.DROP))
                await until(lambda n=n: live.stats.connections >= n + 2
                            and live.state is SessionState.LIVE)
            assert live.failure is None
        assert server.service.minted == 3
        assert emulator.auth.refused == 0
        assert kept() != first


async def test_a_used_token_is_refused_by_the_service(emulator: Emulator,
                                                      tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        token = (await provider(server).fetch()).value
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key=token, endpoint=emulator.url), model=MODEL)
        first = await model.connect()
        await first.close()
        with pytest.raises(LiveSessionError) as caught:
            await model.connect()
    assert caught.value.close_code == 1008
    assert "no uses left" in (caught.value.close_reason or "")


async def test_a_token_not_used_in_its_new_session_window_is_refused(
        emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url, new_session_expire_s=0.3) as server:
        token = (await provider(server).fetch()).value
        await asyncio.sleep(0.4)
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key=token, endpoint=emulator.url), model=MODEL)
        with pytest.raises(LiveSessionError) as caught:
            await model.connect()
    assert "newSessionExpireTime" in (caught.value.close_reason or "")


async def test_a_token_is_locked_to_its_model(emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        token = (await provider(server).fetch()).value
        model = LiveGenerativeModel(
            backend=GeminiDeveloperBackend(api_key=token, endpoint=emulator.url),
            model="gemini-other-model")
        with pytest.raises(LiveSessionError) as caught:
            await model.connect()
    assert "does not allow this model" in (caught.value.close_reason or "")


async def test_a_session_past_expire_time_is_ended_and_resumed_with_a_new_token(
        emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url, expire_s=1.0,
                      new_session_expire_s=1.0) as server:
        kept = KeptCredential(provider(server))
        live = session(emulator, kept)
        async with live:
            await asyncio.wait_for(live.wait_live(), 10)
            await until(lambda: live.stats.connections >= 3)  # two expiries
            await until(lambda: live.state is SessionState.LIVE)
            assert live.failure is None
            assert live.stats.resumptions >= 2


async def test_a_wrong_device_secret_is_refused_and_fatal_naming_the_file(
        emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        wrong = tmp_path / "wrong-secret"
        wrong.write_text("not-the-secret-of-this-device\n")
        status, body, _ = await post(server, basic("kitchen", "not-the-secret-of-this-device"))
        assert (status, body) == (401, {"error": "unknown device or wrong secret"})
        live = session(emulator, KeptCredential(provider(server, wrong)))
        async with live:
            with pytest.raises(LiveSessionError) as caught:
                await asyncio.wait_for(live.wait_live(), 10)
    assert str(wrong) in caught.value.message
    assert "device_secret_file" in caught.value.message


async def test_a_flooding_device_is_rate_limited(emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url, per_device_burst=3,
                      per_device_per_minute=6.0) as server:
        secret = server.device_secret_file.read_text().strip()
        statuses = [(await post(server, basic("kitchen", secret)))[0] for _ in range(10)]
    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    assert server.service.minted == 3


async def test_an_address_guessing_secrets_is_shut_out(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        statuses = [(await post(server, basic("kitchen", f"guess-{n}")))[0] for n in range(15)]
        secret = server.device_secret_file.read_text().strip()
        after = (await post(server, basic("kitchen", secret)))[0]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    assert after == 429  # until the minute has passed


async def test_a_rotated_device_secret_is_used_from_the_next_token(
        emulator: Emulator, tmp_path: Path) -> None:
    from agent.token_server.devices import secret_hash
    from tests.support.token_server import write_devices

    with token_server(tmp_path, emulator.rest_url) as server:
        old = server.device_secret_file.read_text().strip()
        new = "rotated-secret-" + "x" * 30
        write_devices(server.devices_file, kitchen=[secret_hash(old), secret_hash(new)])
        server.device_secret_file.write_text(new + "\n")
        assert (await provider(server).fetch()).value.startswith("auth_tokens/")
        write_devices(server.devices_file, kitchen=[secret_hash(new)])
        assert (await post(server, basic("kitchen", old)))[0] == 401
        assert (await post(server, basic("kitchen", new)))[0] == 200


async def test_a_token_server_with_a_refused_key_answers_502_and_devices_retry(
        emulator: Emulator, tmp_path: Path) -> None:
    with token_server(tmp_path, emulator.rest_url) as server:
        server.settings.api_key_file.write_text("AIzaSyTHEwrongKEYputONtheSERVERbyMISTAKE\n")
        secret = server.device_secret_file.read_text().strip()
        status, body, text = await post(server, basic("kitchen", secret))
        assert (status, body) == (502, {"error": "no token could be minted now"})
        assert "Retry-After: 5" in text
        with pytest.raises(LiveSessionError) as caught:
            await provider(server).fetch()
        assert caught.value.http_status == 502 and not caught.value.permanent
