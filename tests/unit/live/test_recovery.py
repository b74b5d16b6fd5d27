"""Failure classification and the retry schedule."""

from __future__ import annotations

import pytest

from agent.live.errors import LiveConnectionClosed, LiveErrorCode, LiveSessionError
from agent.live.recovery import AttemptLimiter, Backoff, FailureKind, classify
from agent.live.resilient import ReplayBuffer
from agent.live.types import GenerativeContentBlob


def closed(code: int, reason: str) -> LiveSessionError:
    return LiveConnectionClosed(code, reason)


def handshake(code: int, reason: str) -> LiveSessionError:
    return LiveSessionError(
        LiveErrorCode.RESPONSE_ERROR, "handshake failed", close_code=code, close_reason=reason
    )


def http(status: int) -> LiveSessionError:
    return LiveSessionError(LiveErrorCode.FETCH_ERROR, "refused", http_status=status)


@pytest.mark.parametrize(
    ("error", "handshake_", "resuming", "kind"),
    [
        (closed(1006, ""), False, True, FailureKind.TRANSIENT),
        (closed(1011, "Internal error encountered."), False, True, FailureKind.TRANSIENT),
        (closed(1011, "The service is currently unavailable."), False, True, FailureKind.TRANSIENT),
        (
            closed(1011, "Deadline expired before operation could complete."),
            False,
            True,
            FailureKind.TRANSIENT,
        ),
        (closed(1011, "keepalive ping timeout"), False, True, FailureKind.TRANSIENT),
        (closed(1000, "The operation was cancelled."), False, True, FailureKind.TRANSIENT),
        (OSError("Name or service not known"), True, False, FailureKind.TRANSIENT),
        (
            LiveSessionError(LiveErrorCode.TIMEOUT, "no answer"),
            True,
            False,
            FailureKind.TRANSIENT,
        ),
        (http(503), True, False, FailureKind.TRANSIENT),
        (http(429), True, False, FailureKind.QUOTA),
        (closed(1011, "RESOURCE_EXHAUSTED: quota exceeded"), False, True, FailureKind.QUOTA),
        (http(401), True, False, FailureKind.FATAL),
        (http(403), True, True, FailureKind.FATAL),
        (
            handshake(1007, "API key expired. Please renew the API key."),
            True,
            True,
            FailureKind.FATAL,
        ),
        (
            handshake(1008, "API key not valid. Please pass a valid API key."),
            True,
            False,
            FailureKind.FATAL,
        ),
        (handshake(1008, "Permission denied"), True, True, FailureKind.FATAL),
        (
            handshake(1008, "models/x is not found for API version v1beta"),
            True,
            True,
            FailureKind.FATAL,
        ),
        (
            handshake(1007, "User location is not supported for the API use."),
            True,
            False,
            FailureKind.FATAL,
        ),
        (handshake(1007, "Request contains an invalid argument."), True, False, FailureKind.FATAL),
        (
            handshake(1007, "Request contains an invalid argument."),
            True,
            True,
            FailureKind.RESUME_REFUSED,
        ),
        (handshake(1008, "Session not found."), True, True, FailureKind.RESUME_REFUSED),
        (closed(1007, "Request contains an invalid argument."), False, True, FailureKind.TRANSIENT),
        (
            LiveSessionError(LiveErrorCode.NO_API_KEY, "no key"),
            True,
            False,
            FailureKind.FATAL,
        ),
    ],
)
def test_classification(
    error: BaseException, handshake_: bool, resuming: bool, kind: FailureKind
) -> None:
    assert classify(error, during_handshake=handshake_, resuming=resuming) is kind


def test_first_retry_is_immediate_and_the_rest_are_bounded() -> None:
    draws = iter([1.0] * 200)
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=lambda: next(draws))
    delays = [backoff.next_delay() for _ in range(100)]
    assert delays[0] == 0.0
    assert delays[1:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert all(d == 30.0 for d in delays[7:])
    assert sum(delays) == pytest.approx(0.5 + 1 + 2 + 4 + 8 + 16 + 30 * 93)


def test_full_jitter_draws_below_the_ceiling() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=lambda: 0.25)
    assert [backoff.next_delay() for _ in range(6)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0]


def test_reset_makes_the_next_retry_immediate() -> None:
    backoff = Backoff(rng=lambda: 1.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.0


def test_quota_waits_long() -> None:
    backoff = Backoff(quota_s=60.0, rng=lambda: 0.5)
    assert backoff.next_delay(FailureKind.QUOTA) == 90.0


def audio(n: int, size: int = 1280) -> GenerativeContentBlob:
    return GenerativeContentBlob("audio/pcm;rate=16000", bytes([n % 256]) * size)


def test_replay_buffer_drops_oldest_audio_beyond_its_bound() -> None:
    buffer = ReplayBuffer(max_audio_bytes=1280 * 3)
    buffer.append("activity_start", None)
    for n in range(5):
        buffer.append("audio", audio(n))
    buffer.append("text", "hi")
    assert buffer.dropped == 2
    kinds = []
    while len(buffer):
        kind, payload = buffer.popleft()
        kinds.append(kind if kind != "audio" else payload.as_bytes()[0])  # type: ignore[union-attr]
    assert kinds == ["activity_start", 2, 3, 4, "text"]


def test_a_permanent_error_is_fatal_whatever_its_code() -> None:
    error = LiveSessionError(LiveErrorCode.REQUEST_ERROR, "bad endpoint", permanent=True)
    assert classify(error, during_handshake=True, resuming=True) is FailureKind.FATAL


def test_the_attempt_limit_allows_a_burst_then_a_steady_rate() -> None:
    limiter = AttemptLimiter(per_minute=30, burst=20)
    waits = [limiter.reserve(0.0) for _ in range(25)]
    assert waits[:20] == [0.0] * 20
    assert waits[20:] == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_no_schedule_gets_more_attempts_into_a_minute_than_the_limit() -> None:
    limiter = AttemptLimiter(per_minute=30, burst=20)
    now, starts = 0.0, []
    while now < 600:  # a hot loop: attempt again the moment the limiter allows
        now += limiter.reserve(now)
        starts.append(now)
    for begin in starts:
        assert sum(1 for t in starts if begin <= t < begin + 60) <= 20 + 30


def test_the_attempt_limit_refills_while_nobody_connects() -> None:
    limiter = AttemptLimiter(per_minute=30, burst=20)
    for _ in range(20):
        limiter.reserve(0.0)
    assert limiter.reserve(40.0) == 0.0, "20 tokens back after 40 s"


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 5), (-1, 5), (10, 0)])
def test_an_attempt_limit_must_allow_something(per_minute: float, burst: int) -> None:
    with pytest.raises(ValueError):
        AttemptLimiter(per_minute, burst)
