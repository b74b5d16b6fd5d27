"""KeptCredential: when a provider is asked again, and how its failures are classed."""

from __future__ import annotations

import asyncio

import pytest

from agent.live.credentials import (
    MAX_REFUSALS_IN_A_ROW,
    Credential,
    KeptCredential,
    StaticCredential,
    is_credential_refusal,
    kept_credentials,
    note_refusal,
)
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.model import VertexAIBackend
from agent.live.recovery import FailureKind, classify


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A provider that hands out numbered tokens living ``lifetime`` seconds."""

    describe = "the test provider"
    refreshable = True

    def __init__(self, clock: Clock, lifetime: float | None = 3600.0, *,
                 per_connection: bool = False) -> None:
        self.clock, self.lifetime, self.per_connection = clock, lifetime, per_connection
        self.calls = 0
        self.error: BaseException | None = None

    async def fetch(self) -> Credential:
        self.calls += 1
        if self.error is not None:
            raise self.error
        expires = None if self.lifetime is None else self.clock.now + self.lifetime
        return Credential(f"token-{self.calls}", expires, self.per_connection)


async def test_a_credential_is_fetched_once_then_again_ahead_of_expiry() -> None:
    clock = Clock()
    provider = Counting(clock, lifetime=3600.0)
    kept = KeptCredential(provider, refresh_ahead_s=300.0, clock=clock)
    await kept.ready()
    await kept.ready()
    assert (kept(), provider.calls) == ("token-1", 1)
    clock.now += 3600.0 - 301.0
    await kept.ready()
    assert provider.calls == 1
    clock.now += 2.0  # within 300 s of the end
    await kept.ready()
    assert (kept(), provider.calls) == ("token-2", 2)


async def test_a_short_lived_credential_is_refreshed_a_tenth_of_its_life_ahead() -> None:
    clock = Clock()
    provider = Counting(clock, lifetime=2.0)
    kept = KeptCredential(provider, refresh_ahead_s=300.0, clock=clock)
    await kept.ready()
    clock.now += 1.7
    await kept.ready()
    assert provider.calls == 1
    clock.now += 0.15
    await kept.ready()
    assert provider.calls == 2


async def test_a_per_connection_credential_is_fetched_again_after_use_only() -> None:
    clock = Clock()
    provider = Counting(clock, per_connection=True)
    kept = KeptCredential(provider, clock=clock)
    await kept.ready()
    await kept.ready()
    assert provider.calls == 1
    kept.used()
    await kept.ready()
    assert (kept(), provider.calls) == ("token-2", 2)


async def test_new_values_are_handed_to_the_redaction_once() -> None:
    seen: list[str] = []
    clock = Clock()
    kept = KeptCredential(Counting(clock, per_connection=True), clock=clock, on_new=seen.append)
    for _ in range(3):
        await kept.ready()
        kept.used()
    assert seen == ["token-1", "token-2", "token-3"]


async def test_a_value_that_did_not_change_is_not_registered_again() -> None:
    seen: list[str] = []
    kept = KeptCredential(StaticCredential("same-key-123"), on_new=seen.append)
    await kept.ready()
    kept.refused()  # a static key is not refreshable: nothing is fetched again
    await kept.ready()
    assert seen == ["same-key-123"]


async def test_calling_before_ready_is_a_clear_error() -> None:
    with pytest.raises(LiveSessionError, match="No credential from the test provider"):
        KeptCredential(Counting(Clock()))()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("x"), ValueError("bad")])
async def test_a_provider_that_raises_anything_is_a_transient_live_error(
        error: Exception) -> None:
    provider = Counting(Clock())
    provider.error = error
    with pytest.raises(LiveSessionError) as caught:
        await KeptCredential(provider).ready()
    assert not caught.value.permanent
    assert "the test provider" in caught.value.message
    assert classify(caught.value, during_handshake=True, resuming=False) is FailureKind.TRANSIENT


async def test_a_permanent_provider_failure_stays_permanent() -> None:
    provider = Counting(Clock())
    provider.error = LiveSessionError(LiveErrorCode.NO_API_KEY, "fix the file", permanent=True)
    with pytest.raises(LiveSessionError) as caught:
        await KeptCredential(provider).ready()
    assert classify(caught.value, during_handshake=True, resuming=False) is FailureKind.FATAL


async def test_a_provider_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    class Hanging(Counting):
        async def fetch(self) -> Credential:
            await asyncio.sleep(3600)
            raise AssertionError

    monkeypatch.setattr("agent.live.credentials.FETCH_TIMEOUT_S", 0.05)
    with pytest.raises(LiveSessionError) as caught:
        await KeptCredential(Hanging(Clock())).ready()
    assert caught.value.code is LiveErrorCode.TIMEOUT


@pytest.mark.parametrize(("status", "code", "reason", "refusal"), [
    (401, None, None, True),
    (403, None, None, True),
    (None, 1008, "Request had invalid authentication credentials.", True),
    (None, 1007, "API key not valid. Please pass a valid API key.", True),
    (None, 1008, "The auth token has expired.", True),
    (None, 1011, "Internal error encountered.", False),
    (None, 1007, "Request contains an invalid argument.", False),
    (500, None, None, False),
])
def test_which_errors_refuse_a_credential(status: int | None, code: int | None,
                                          reason: str | None, refusal: bool) -> None:
    error = LiveSessionError(LiveErrorCode.FETCH_ERROR, "x", http_status=status,
                             close_code=code, close_reason=reason)
    assert is_credential_refusal(error) is refusal


async def test_a_refusal_with_a_refreshable_provider_is_retried_until_the_limit() -> None:
    clock = Clock()
    kept = KeptCredential(Counting(clock), clock=clock)
    await kept.ready()
    for attempt in range(1, MAX_REFUSALS_IN_A_ROW + 1):
        error = LiveSessionError(LiveErrorCode.FETCH_ERROR, "refused", http_status=401)
        note_refusal([kept], error)
        kind = classify(error, during_handshake=True, resuming=False)
        if attempt < MAX_REFUSALS_IN_A_ROW:
            assert kind is FailureKind.CREDENTIAL
            await kept.ready()
            assert kept() == f"token-{attempt + 1}"  # fetched again
        else:
            assert kind is FailureKind.FATAL
            assert "the test provider" in error.message
    kept.used()
    assert kept.refusals_in_a_row == 0


def test_a_refusal_of_a_static_key_stays_fatal() -> None:
    kept = KeptCredential(StaticCredential("k" * 39))
    error = LiveSessionError(LiveErrorCode.FETCH_ERROR, "refused", http_status=401)
    note_refusal([kept], error)
    assert classify(error, during_handshake=True, resuming=False) is FailureKind.FATAL


def test_kept_credentials_are_found_in_a_backend() -> None:
    kept = KeptCredential(StaticCredential("k" * 39))
    assert kept_credentials(VertexAIBackend(access_token=kept, project_id="p")) == [kept]
    assert kept_credentials(VertexAIBackend(access_token="plain", project_id="p")) == []
