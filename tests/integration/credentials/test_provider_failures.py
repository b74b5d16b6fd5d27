"""Whatever a credential function or provider raises, the session's supervisor lives on:
transient failures are retried, permanent ones end the session with a clear error, and
``wait_live()`` never hangs."""

from __future__ import annotations

import asyncio

import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.live.credentials import Credential, KeptCredential
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel, Secret
from agent.live.resilient import ReconnectPolicy, ResilientSession

FAST = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def session(emulator: Emulator, key: Secret) -> ResilientSession:
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key=key,
                                                               endpoint=emulator.url),
                                model="gemini-live-2.5-flash-preview")
    return ResilientSession(model, FAST)


class Flaky:
    describe = "a flaky provider"
    refreshable = True

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error = failures, error

    async def fetch(self) -> Credential:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return Credential("a-good-key-" + "k" * 28)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("k"), OSError("down"),
                                   ZeroDivisionError()])
async def test_a_provider_that_raises_is_retried_and_the_session_comes_up(
        error: BaseException) -> None:
    async with Emulator(EmulatorConfig()) as emulator:
        live = session(emulator, KeptCredential(Flaky(3, error)))
        async with live:
            await asyncio.wait_for(live.wait_live(), 10)
            assert live.stats.failures == 3
            assert live.failure is None


async def test_a_credential_function_that_raises_is_retried() -> None:
    calls = 0

    def key() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError("not yet")
        return "a-good-key-" + "k" * 28

    async with Emulator(EmulatorConfig()) as emulator:
        live = session(emulator, key)
        async with live:
            await asyncio.wait_for(live.wait_live(), 10)
            assert live.failure is None


async def test_a_permanent_provider_failure_ends_the_session_and_wait_live_raises() -> None:
    error = LiveSessionError(LiveErrorCode.NO_API_KEY, "fix the key file", permanent=True)
    async with Emulator(EmulatorConfig()) as emulator:
        live = session(emulator, KeptCredential(Flaky(1, error)))
        async with live:
            with pytest.raises(LiveSessionError, match="fix the key file"):
                await asyncio.wait_for(live.wait_live(), 10)
