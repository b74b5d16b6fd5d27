"""Vertex AI with real google-auth: a service account key file whose token_uri is the
emulator's OAuth endpoint on 127.0.0.1; tokens expire and are refreshed, and the session
never ends on an expired one."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig, TokenLifetimes
from agent.emulator.faults import Fault, FaultKind
from agent.emulator.server import Emulator
from agent.live.credentials import KeptCredential
from agent.live.errors import LiveSessionError
from agent.live.model import LiveGenerativeModel, VertexAIBackend
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState
from agent.live.vertex_auth import GoogleAuthProvider
from tests.support.service_account import write_service_account

FAST = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def vertex_session(emulator: Emulator, kept: KeptCredential) -> ResilientSession:
    backend = VertexAIBackend(access_token=kept, project_id="edge-test", endpoint=emulator.url)
    return ResilientSession(LiveGenerativeModel(backend=backend,
                                                model="gemini-live-2.5-flash"), FAST)


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10.0):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_tokens_are_refreshed_off_the_loop_and_expired_ones_never_end_it(
        tmp_path: Path) -> None:
    config = EmulatorConfig(check_tokens=True, rest=True,
                            token_lifetimes=TokenLifetimes(access=1.5))
    async with Emulator(config) as emulator:
        key = write_service_account(tmp_path / "sa.json", emulator.rest_url + "/oauth2/token")
        provider = GoogleAuthProvider(key)
        threads: list[str] = []
        refresh = provider._refresh

        def spy():  # type: ignore[no-untyped-def]
            threads.append(threading.current_thread().name)
            return refresh()

        provider._refresh = spy  # type: ignore[method-assign]
        kept = KeptCredential(provider)
        session = vertex_session(emulator, kept)
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            for n in range(3):
                await asyncio.sleep(1.6)  # the token of the live connection has expired
                emulator.inject(Fault(FaultKind.DROP))
                await until(lambda n=n: session.stats.connections >= n + 2
                            and session.state is SessionState.LIVE)
            assert session.failure is None
        assert kept.fetches >= 4  # one token per expiry
        assert emulator.auth.refused == 0  # each connection had a valid token
        assert threads and threading.main_thread().name not in threads


async def test_an_expired_token_refused_by_the_server_is_refreshed(tmp_path: Path) -> None:
    config = EmulatorConfig(check_tokens=True, rest=True,
                            token_lifetimes=TokenLifetimes(access=600))
    async with Emulator(config) as emulator:
        key = write_service_account(tmp_path / "sa.json", emulator.rest_url + "/oauth2/token")
        kept = KeptCredential(GoogleAuthProvider(key))
        session = vertex_session(emulator, kept)
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            emulator.auth._tokens.clear()  # the service forgot (revoked) every token
            emulator.inject(Fault(FaultKind.DROP))
            await until(lambda: emulator.auth.refused >= 1)
            await until(lambda: session.state is SessionState.LIVE)
            assert session.failure is None
            assert kept.fetches == 2


async def test_a_missing_key_file_is_fatal_and_says_what_to_fix(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(check_tokens=True)) as emulator:
        kept = KeptCredential(GoogleAuthProvider(tmp_path / "missing.json"))
        session = vertex_session(emulator, kept)
        async with session:
            with pytest.raises(LiveSessionError) as caught:
                await asyncio.wait_for(session.wait_live(), 10)
    assert "service_account_file" in caught.value.message
    assert caught.value.permanent


async def test_a_token_endpoint_that_is_down_is_retried(tmp_path: Path) -> None:
    config = EmulatorConfig(check_tokens=True, rest=True)
    async with Emulator(config) as emulator:
        key = write_service_account(tmp_path / "sa.json", "http://127.0.0.1:9/oauth2/token")
        kept = KeptCredential(GoogleAuthProvider(key))
        session = vertex_session(emulator, kept)
        async with session:
            await until(lambda: session.stats.failures >= 2)
            assert session.failure is None  # transient: it keeps trying
            assert session.state is not SessionState.FAILED
