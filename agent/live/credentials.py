"""Credentials that change while the agent runs: the provider seam, and the one that keeps them.

A ``CredentialProvider`` says how to get credential material (an API key from a file, a Vertex
access token from google-auth, an ephemeral token from the owner's token server, a Firebase App
Check or ID token). ``KeptCredential`` holds the newest one for a backend: it is the backend's
``Secret`` (calling it gives the current value) and ``LiveGenerativeModel.connect`` makes it
ready before each connection:

- a credential is fetched again when it is due: it expires within ``refresh_ahead_s`` (at most
  a tenth of its lifetime, so a short-lived token is not fetched on every call), it was meant
  for one connection and has been used, or the server refused it;
- a provider's failure is a ``LiveSessionError``: ``permanent`` for what only the owner can fix
  (a missing key file, a refused device secret), transient otherwise (the token service is
  down); anything else a provider raises is classed transient here, never lost;
- a refusal by the Live server of a credential that a provider can replace leads to a refresh
  and a new attempt (``credential_refused`` on the error), until fresh credentials have been
  refused ``MAX_REFUSALS_IN_A_ROW`` times: then the error is fatal and names the provider.

Expiry times are seconds of ``time.time()`` (servers state them as absolute times).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

from agent.live.errors import LiveErrorCode, LiveSessionError

log = structlog.get_logger(__name__)

MAX_REFUSALS_IN_A_ROW = 3
"""Fresh credentials the server refused in a row before the refusal is fatal."""
REFRESH_AHEAD_S = 300.0
"""A credential is fetched again this long before it expires (or a tenth of its lifetime)."""
FETCH_TIMEOUT_S = 30.0
"""The longest a provider may take to fetch one credential."""


@dataclass(frozen=True)
class Credential:
    """Credential material for the next connection: the value sent, and when it stops working
    for a new connection (``time.time()`` seconds; None: it does not expire).
    ``per_connection``: ask the provider again before each connection (a single-use token; a
    key file that may have changed)."""

    value: str = field(repr=False)
    expires_at: float | None = None
    per_connection: bool = False


@runtime_checkable
class CredentialProvider(Protocol):
    """Where fresh credential material comes from."""

    @property
    def describe(self) -> str:
        """What it is, for messages: "the key file /etc/edge-agent/api-key"."""
        ...

    @property
    def refreshable(self) -> bool:
        """Whether fetching again can give a different credential (a fixed key cannot)."""
        ...

    async def fetch(self) -> Credential:
        """Credential material for the next connection. Raises ``LiveSessionError``."""
        ...


@dataclass(frozen=True)
class StaticCredential:
    """A credential that never changes: a key given at start."""

    value: str = field(repr=False)
    describe: str = "the configured key"

    @property
    def refreshable(self) -> bool:
        return False

    async def fetch(self) -> Credential:
        return Credential(self.value)


class KeptCredential:
    """The newest credential of one provider, fetched again when due. A ``Secret``: calling it
    returns the current value (``ready()`` must have run)."""

    def __init__(
        self,
        provider: CredentialProvider,
        *,
        refresh_ahead_s: float = REFRESH_AHEAD_S,
        clock: Callable[[], float] = time.time,
        on_new: Callable[[str], None] | None = None,
    ) -> None:
        self.provider = provider
        self.refresh_ahead_s = refresh_ahead_s
        self._clock = clock
        self._on_new = on_new
        self._current: Credential | None = None
        self._fetched_at = 0.0
        self._used = False
        self._stale = False
        self._lock = asyncio.Lock()
        self.refusals_in_a_row = 0
        self.fetches = 0
        self.changes = 0
        self.last_fetch_s = 0.0
        """Seconds the last fetch took: the gap it added to a connection."""

    def __call__(self) -> str:
        if self._current is None:
            raise LiveSessionError(
                LiveErrorCode.NO_API_KEY, f"No credential from {self.provider.describe} yet."
            )
        return self._current.value

    def __repr__(self) -> str:
        return f"KeptCredential({self.provider.describe})"

    @property
    def expires_at(self) -> float | None:
        return None if self._current is None else self._current.expires_at

    def due(self) -> bool:
        """Whether the next connection needs a new credential."""
        current = self._current
        if current is None or self._stale or (current.per_connection and self._used):
            return True
        if current.expires_at is None:
            return False
        lifetime = max(current.expires_at - self._fetched_at, 0.0)
        ahead = min(self.refresh_ahead_s, lifetime / 10)
        return self._clock() >= current.expires_at - ahead

    async def ready(self) -> None:
        """Fetch a credential if one is due. Raises ``LiveSessionError`` (never anything else)."""
        async with self._lock:
            if not self.due():
                return
            started = time.monotonic()
            try:
                async with asyncio.timeout(FETCH_TIMEOUT_S):
                    credential = await self.provider.fetch()
            except LiveSessionError:
                raise
            except TimeoutError:
                raise LiveSessionError(
                    LiveErrorCode.TIMEOUT,
                    f"Fetching a credential from {self.provider.describe} took more than "
                    f"{FETCH_TIMEOUT_S:g} s.",
                ) from None
            except Exception as exc:  # a provider's bug or a library's surprise: retry later
                raise LiveSessionError(
                    LiveErrorCode.FETCH_ERROR,
                    f"Fetching a credential from {self.provider.describe} failed: "
                    f"{type(exc).__name__}",
                ) from None
            if not isinstance(credential, Credential) or not credential.value:
                raise LiveSessionError(
                    LiveErrorCode.NO_API_KEY,
                    f"{self.provider.describe} gave no credential.",
                )
            previous, self._current = self._current, credential
            self.last_fetch_s = time.monotonic() - started
            self.fetches += 1
            self._fetched_at = self._clock()
            self._used = False
            self._stale = False
            if previous is not None and previous.value == credential.value:
                return
            if self._on_new is not None:
                self._on_new(credential.value)
            self.changes += 1
            log.info(
                "credential.fetched",
                source=self.provider.describe,
                took_ms=round(self.last_fetch_s * 1000, 1),
                expires_in_s=None if credential.expires_at is None
                else round(credential.expires_at - self._fetched_at, 1),
            )

    def used(self) -> None:
        """A connection was made with the current credential."""
        self._used = True
        self.refusals_in_a_row = 0

    def refused(self) -> bool:
        """The server refused the current credential. True when a fresh one is worth trying."""
        if not self.provider.refreshable:
            return False
        self.refusals_in_a_row += 1
        self._stale = True
        return self.refusals_in_a_row < MAX_REFUSALS_IN_A_ROW


def kept_credentials(backend: object) -> list[KeptCredential]:
    """The kept credentials a backend holds in its fields."""
    fields = getattr(backend, "__dict__", {})
    return [value for value in fields.values() if isinstance(value, KeptCredential)]


_CREDENTIAL_WORDS = ("api key", "api_key", "credential", "token", "unauthenticated", "expired",
                     "permission", "app check", "appcheck")


def is_credential_refusal(error: LiveSessionError) -> bool:
    """Whether the server refused the connection for its credential."""
    if error.http_status in (401, 403):
        return True
    if error.close_code in (1007, 1008):
        reason = (error.close_reason or "").lower()
        return any(word in reason for word in _CREDENTIAL_WORDS)
    return False


def note_refusal(kept: list[KeptCredential], error: LiveSessionError) -> None:
    """Mark ``error`` as a credential refusal worth a retry with fresh credentials, when it
    is one and a provider can give them; else, when fresh credentials kept being refused,
    say which provider to fix."""
    if not kept or not is_credential_refusal(error):
        return
    verdicts = [k.refused() for k in kept if k.provider.refreshable]
    if not verdicts:
        return
    if all(verdicts):
        error.credential_refused = True
        log.warning("credential.refused", sources=[k.provider.describe for k in kept])
        return
    sources = ", ".join(k.provider.describe for k in kept)
    error.message += (f" Fresh credentials from {sources} were refused "
                      f"{MAX_REFUSALS_IN_A_ROW} times in a row: fix that credential.")
