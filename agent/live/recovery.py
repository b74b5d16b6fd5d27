"""What to do when a Live connection fails: classify the failure, and space the retries.

The service reports errors only by closing the WebSocket with a code and a text reason, or by
refusing the upgrade with an HTTP status. The classification keys on both:

=================  ==========================================================================
``TRANSIENT``      1006 (dropped), 1001, 1011 (internal, unavailable, deadline, keepalive
                   timeout), a server-side 1000 (Vertex ends connections that way), network and
                   DNS errors, timeouts, HTTP 5xx. Retry with backoff, the first retry at once.
``QUOTA``          RESOURCE_EXHAUSTED, quota or rate-limit reasons, HTTP 429: a long backoff.
``RESUME_REFUSED`` the handshake of a *resuming* connection was rejected with 1007 or 1008
                   (expired or unknown handle): start a fresh session, context is lost.
``CREDENTIAL``     the server refused a credential that a provider can replace
                   (``credential_refused``): fetch a fresh one and retry with backoff.
``FATAL``          bad, expired or missing key; permission denied; model not found or not
                   supported; location not supported; an invalid setup (1007/1008 on a fresh
                   connection); HTTP 400/401/403/404; a ``permanent`` error (a malformed
                   endpoint, a credential no header can carry). Stop retrying and report.
=================  ==========================================================================

Whatever the server does, attempts are spaced twice over: by the backoff, which only a
connection that stayed up resets, and by an ``AttemptLimiter`` (a token bucket) that no server
behaviour resets at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import StrEnum

from agent.live.errors import LiveErrorCode, LiveSessionError


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    QUOTA = "quota"
    CREDENTIAL = "credential"
    RESUME_REFUSED = "resume-refused"
    FATAL = "fatal"


_FATAL_REASONS = (
    "api key",
    "api_key",
    "permission",
    "unauthenticated",
    "is not found for api version",  # the model
    "not supported for bidigeneratecontent",
    "not implemented",
    "location is not supported",
    "billing",
)
_QUOTA_REASONS = ("resource_exhausted", "resource exhausted", "quota", "rate limit", "too many")
_FATAL_CODES = {
    LiveErrorCode.NO_API_KEY,
    LiveErrorCode.NO_MODEL,
    LiveErrorCode.NO_PROJECT_ID,
    LiveErrorCode.UNSUPPORTED,
}


def classify(error: BaseException, *, during_handshake: bool, resuming: bool) -> FailureKind:
    """Decide how to react to ``error``, raised by ``connect()`` or ending a live connection."""
    if not isinstance(error, LiveSessionError):
        return FailureKind.TRANSIENT  # OSError and the like: the network
    if error.credential_refused:
        return FailureKind.CREDENTIAL
    if error.permanent or error.code in _FATAL_CODES:
        return FailureKind.FATAL
    reason = (error.close_reason or "").lower() + " " + error.message.lower()
    if any(word in reason for word in _QUOTA_REASONS) or error.http_status == 429:
        return FailureKind.QUOTA
    status = error.http_status
    if status is not None:
        if status in (400, 401, 403, 404):
            return FailureKind.FATAL
        return FailureKind.TRANSIENT
    code = error.close_code
    if code in (1007, 1008):
        if any(word in reason for word in _FATAL_REASONS):
            return FailureKind.FATAL
        if during_handshake:
            return FailureKind.RESUME_REFUSED if resuming else FailureKind.FATAL
        # Mid-session 1007/1008 with a generic reason: something we sent was refused.
        # Resuming is worth a try; the caller bounds how often in a row.
        return FailureKind.TRANSIENT
    return FailureKind.TRANSIENT


class Backoff:
    """Exponential backoff with full jitter; the first retry after a success comes at once.

    Attempt 0 waits 0 s; attempt n waits a uniform draw from [0, min(cap, base * 2**(n-1))].
    Quota failures wait at least ``quota_s`` and at most twice that.
    """

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        quota_s: float = 60.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.quota_s = quota_s
        self._rng = rng
        self.attempt = 0

    def next_delay(self, kind: FailureKind = FailureKind.TRANSIENT) -> float:
        attempt = self.attempt
        self.attempt += 1
        if kind is FailureKind.QUOTA:
            return self.quota_s * (1.0 + self._rng())
        if attempt == 0:
            return 0.0
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 30))
        return ceiling * self._rng()

    def reset(self) -> None:
        self.attempt = 0


class AttemptLimiter:
    """A token bucket over connection attempts: at most ``burst`` at once, then one every
    ``60 / per_minute`` seconds, so any 60 s hold at most ``burst + per_minute`` attempts.

    ``reserve()`` takes a token for an attempt at ``now`` and says how long to wait first; the
    caller waits that long. Time is whatever ``now`` the caller gives, so a caller whose sleeps
    are simulated (tests) passes the time it has slept.
    """

    def __init__(self, per_minute: float = 30.0, burst: int = 20) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("an attempt limit needs per_minute > 0 and burst >= 1")
        self.interval_s = 60.0 / per_minute
        self.burst = burst
        self._free_at: float | None = None  # when the bucket would be full again

    def reserve(self, now: float) -> float:
        """Take a token for an attempt; the seconds to wait before making it."""
        span = self.burst * self.interval_s
        free_at = now if self._free_at is None else max(self._free_at, now)
        start = max(now, free_at + self.interval_s - span)
        self._free_at = free_at + self.interval_s
        return start - now
