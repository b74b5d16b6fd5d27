"""ResilientSession against servers and credentials that misbehave on the connect path: every
failure is classified and logged, the session never hangs silently, and no server behaviour
makes it connect more often than its attempt limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from websockets.exceptions import ConnectionClosed

from agent.live.errors import LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel, Secret
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState

from .conftest import ScriptedServer

T = 10.0


def model(endpoint: str, key: Secret = "test-key") -> LiveGenerativeModel:
    return LiveGenerativeModel(
        backend=GeminiDeveloperBackend(api_key=key, endpoint=endpoint), model="m"
    )


async def fails(session: ResilientSession) -> LiveSessionError:
    """wait_live() raises the fatal error in time; close() returns without raising."""
    with pytest.raises(LiveSessionError) as info:
        async with asyncio.timeout(T):
            await session.wait_live()
    assert session.state is SessionState.FAILED
    async with asyncio.timeout(T):
        await session.close()
    return info.value


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("ws://127.0.0.1:notaport", "Port could not be cast"),
        ("ws://127.0.0.1:99999", "out of range"),
        ("http://127.0.0.1:8765", "scheme"),
        ("ws://", "hostname"),
    ],
)
async def test_a_malformed_endpoint_fails_at_once_with_what_to_fix(
    endpoint: str, words: str
) -> None:
    session = ResilientSession(model(endpoint))
    with structlog.testing.capture_logs() as logs:
        await session.start()
        error = await fails(session)
    assert words in str(error) and "endpoint" in str(error)
    [failure] = [e for e in logs if e["event"] == "session.failure"]
    assert failure["kind"] == "fatal"
    assert any(e["event"] == "session.failed" for e in logs)


@pytest.mark.parametrize(
    "key",
    ["\ufeffAIzaSy-planted-key", "AIzaSy-planted-key\r\n", "AIzaSy-planted\x00key"],
)
async def test_a_key_no_header_can_carry_fails_without_a_retry_and_is_never_shown(
    live_server: ScriptedServer, key: str
) -> None:
    session = ResilientSession(model(live_server.endpoint, key))
    with structlog.testing.capture_logs() as logs:
        await session.start()
        error = await fails(session)
    assert "x-goog-api-key" in str(error)
    assert session.stats.failures == 1 and session.stats.connections == 0
    assert "planted" not in str(error) + (session.stats.last_error or "") + json.dumps(logs)


async def test_a_credential_that_returns_no_string_fails_with_a_clear_error(
    live_server: ScriptedServer,
) -> None:
    session = ResilientSession(model(live_server.endpoint, lambda: 12))  # type: ignore[arg-type,return-value]
    await session.start()
    error = await fails(session)
    assert "returned a int, not a string" in str(error)


async def test_a_credential_that_raises_is_a_logged_transient_failure(
    live_server: ScriptedServer,
) -> None:
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("token service unreachable")
        return "test-key"

    policy = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.01)
    session = ResilientSession(model(live_server.endpoint, flaky), policy)
    with structlog.testing.capture_logs() as logs:
        await session.start()
        conn = await live_server.accept()
        await conn.handshake()
        async with asyncio.timeout(T):
            await session.wait_live()
        await session.close()
    failures = [e for e in logs if e["event"] == "session.failure"]
    assert [f["kind"] for f in failures] == ["transient", "transient"]
    assert "token service unreachable" in (session.stats.last_error or "")


async def test_an_unexpected_error_in_the_supervisor_fails_the_session_loudly(
    live_server: ScriptedServer,
) -> None:
    # A broken jitter source: the first retry needs no draw, the second one breaks.
    session = ResilientSession(
        model("ws://127.0.0.1:1"), rng=lambda: None,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        await session.start()
        error = await fails(session)
    assert "unexpected error" in str(error)
    assert any(e["event"] == "session.supervisor_failed" for e in logs)


async def serve_go_aways(server: ScriptedServer, time_left: Callable[[int], Any]) -> None:
    """Each connection: setup, a resumable handle, a goAway; then on to the next one."""
    number = 0
    while True:
        try:
            conn = await server.accept()
        except TimeoutError:
            continue
        number += 1
        with contextlib.suppress(ConnectionClosed):  # the client may be closing by now
            await conn.handshake()
            await conn.send({"sessionResumptionUpdate": {"newHandle": f"h{number}",
                                                         "resumable": True}})
            await conn.send({"goAway": {"timeLeft": time_left(number)}})


async def test_go_aways_on_short_connections_climb_the_backoff(live_server: ScriptedServer) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    server = asyncio.create_task(serve_go_aways(live_server, lambda n: "0s"))
    policy = ReconnectPolicy(backoff_base_s=0.5, backoff_cap_s=30.0)
    session = ResilientSession(model(live_server.endpoint), policy, rng=lambda: 1.0, sleep=record)
    async with session:
        async with asyncio.timeout(T):
            while len(delays) < 8:
                await asyncio.sleep(0.01)
    server.cancel()
    assert delays[:8] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert session.stats.failures == 0, "a handover is not a failure"


@pytest.mark.parametrize("time_left", ["0s", "-5s", "NaN", "1e300s", 1e308, None, {"s": 1}])
async def test_no_go_away_storm_beats_the_attempt_limit(
    live_server: ScriptedServer, time_left: Any
) -> None:
    """The weakest policy there is (no backoff, every connection "stable"): only the attempt
    limit spaces the connections. Sleeps are simulated; the limit counts the time slept."""
    slept = 0.0

    async def record(seconds: float) -> None:
        nonlocal slept
        slept += seconds
        await asyncio.sleep(0)

    server = asyncio.create_task(serve_go_aways(live_server, lambda n: time_left))
    policy = ReconnectPolicy(backoff_base_s=1e-6, backoff_cap_s=1e-6, stable_after_s=0.0,
                             handover_margin_s=0.0)  # fmt: skip
    session = ResilientSession(model(live_server.endpoint), policy, sleep=record)
    async with session:
        async with asyncio.timeout(T):
            while session.stats.connections < 40:
                await asyncio.sleep(0.01)
    server.cancel()
    bound = policy.attempt_burst + policy.attempts_per_minute * slept / 60
    assert session.stats.connections <= bound + 1
    assert slept >= (40 - policy.attempt_burst - 1) * 60 / policy.attempts_per_minute
    assert session.stats.attempts_limited > 0
