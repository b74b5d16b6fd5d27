"""Firebase AI Logic with App Check (a custom provider: URL or command) and Firebase Auth (REST
sign-in, then refresh tokens), against the emulator's endpoints; the emulator checks the
headers' presence and expiry."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig, TokenLifetimes
from agent.emulator.faults import Fault, FaultKind
from agent.emulator.server import Emulator
from agent.live.credentials import KeptCredential
from agent.live.errors import LiveSessionError
from agent.live.firebase_tokens import AppCheckProvider, FirebaseAuthProvider
from agent.live.model import FirebaseGoogleAIBackend, FirebaseVertexAIBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState

KEY = "AIzaSyFIREBASEwebKEYforTHEtestPROJECT0001"
FAST = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10.0):
        while not predicate():
            await asyncio.sleep(0.01)


def firebase(emulator: Emulator, *, app_check: KeptCredential | None = None,
             auth: KeptCredential | None = None, vertex: bool = False) -> ResilientSession:
    backend: FirebaseGoogleAIBackend | FirebaseVertexAIBackend
    if vertex:
        backend = FirebaseVertexAIBackend(api_key=KEY, project_id="p", app_id="1:2:web:3",
                                          app_check_token=app_check, auth_token=auth,
                                          endpoint=emulator.url)
    else:
        backend = FirebaseGoogleAIBackend(api_key=KEY, project_id="p", app_id="1:2:web:3",
                                          app_check_token=app_check, auth_token=auth,
                                          endpoint=emulator.url)
    model = LiveGenerativeModel(backend=backend, model="gemini-live-2.5-flash-preview")
    return ResilientSession(model, FAST)


async def reconnect(emulator: Emulator, session: ResilientSession, times: int) -> None:
    for n in range(times):
        await asyncio.sleep(0.6)  # past the tokens' expiry
        emulator.inject(Fault(FaultKind.DROP))
        await until(lambda n=n: session.stats.connections >= n + 2
                    and session.state is SessionState.LIVE)


@pytest.mark.parametrize("vertex", [False, True])
async def test_app_check_tokens_from_a_url_are_refreshed_and_always_valid(vertex: bool) -> None:
    config = EmulatorConfig(api_key=KEY, require_app_check=True, rest=True,
                            token_lifetimes=TokenLifetimes(app_check=0.5))
    async with Emulator(config) as emulator:
        kept = KeptCredential(AppCheckProvider(url=emulator.rest_url + "/app-check/token"))
        session = firebase(emulator, app_check=kept, vertex=vertex)
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            await reconnect(emulator, session, 3)
            assert session.failure is None
        assert kept.fetches >= 4
        assert emulator.auth.refused == 0


async def test_app_check_tokens_from_a_command(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=KEY, require_app_check=True, rest=True)
    async with Emulator(config) as emulator:
        script = tmp_path / "app-check-token"
        script.write_text(
            f"#!{sys.executable}\nimport urllib.request, sys\n"
            f"r = urllib.request.urlopen(urllib.request.Request("
            f"{emulator.rest_url + '/app-check/token'!r}, data=b'', method='POST'))\n"
            "sys.stdout.write(r.read().decode())\n")
        script.chmod(0o755)
        kept = KeptCredential(AppCheckProvider(command=[str(script)]))
        session = firebase(emulator, app_check=kept)
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
        assert emulator.auth.refused == 0


async def test_a_failing_app_check_command_is_retried_not_fatal(tmp_path: Path) -> None:
    script = tmp_path / "broken"
    script.write_text("#!/bin/sh\necho 'secret stuff' >&2\nexit 3\n")
    script.chmod(0o755)
    async with Emulator(EmulatorConfig(api_key=KEY, require_app_check=True)) as emulator:
        session = firebase(emulator, app_check=KeptCredential(
            AppCheckProvider(command=[str(script)])))
        async with session:
            await until(lambda: session.stats.failures >= 2)
            assert session.failure is None
            assert "exit status 3" in (session.stats.last_error or "")


async def test_without_an_app_check_token_the_service_refuses() -> None:
    async with Emulator(EmulatorConfig(api_key=KEY, require_app_check=True)) as emulator:
        session = firebase(emulator)
        async with session:
            with pytest.raises(LiveSessionError) as caught:
                await asyncio.wait_for(session.wait_live(), 10)
    assert "App Check" in (caught.value.close_reason or "")


async def test_anonymous_auth_signs_in_once_then_refreshes() -> None:
    config = EmulatorConfig(api_key=KEY, require_firebase_auth=True, rest=True,
                            token_lifetimes=TokenLifetimes(id_token=0.5))
    async with Emulator(config) as emulator:
        provider = FirebaseAuthProvider(lambda: KEY, custom_token=None,
                                        identity_url=emulator.rest_url,
                                        secure_token_url=emulator.rest_url)
        session = firebase(emulator, auth=KeptCredential(provider))
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            await reconnect(emulator, session, 3)
            assert session.failure is None
        assert provider.sign_ins == 1
        assert provider.refreshes >= 3
        assert emulator.auth.refused == 0


async def test_a_custom_token_signs_in_and_a_revoked_refresh_token_signs_in_again() -> None:
    config = EmulatorConfig(api_key=KEY, require_firebase_auth=True, rest=True,
                            token_lifetimes=TokenLifetimes(id_token=0.5))
    async with Emulator(config) as emulator:
        provider = FirebaseAuthProvider(lambda: KEY, custom_token=lambda: "eyJcustom.token.x",
                                        identity_url=emulator.rest_url,
                                        secure_token_url=emulator.rest_url)
        session = firebase(emulator, auth=KeptCredential(provider))
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            emulator.auth._tokens.clear()  # every ID and refresh token revoked
            emulator.inject(Fault(FaultKind.DROP))
            await until(lambda: session.stats.connections >= 2
                        and session.state is SessionState.LIVE)
            assert session.failure is None
        assert provider.sign_ins == 2


async def test_an_answer_without_a_lifetime_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "no-ttl"
    script.write_text("#!/bin/sh\necho '" + json.dumps({"token": "t" * 20}) + "'\n")
    script.chmod(0o755)
    with pytest.raises(LiveSessionError, match="lifetime"):
        await AppCheckProvider(command=[str(script)]).fetch()
