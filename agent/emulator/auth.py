"""Who may connect: the emulator's keys, and the tokens it issued, with their expiry and uses.

By default any non-empty credential is accepted (or only ``EmulatorConfig.api_key``). Told to
(``check_tokens``, ``require_app_check``, ``require_firebase_auth``), the emulator checks what
the service checks: an OAuth access token (``Bearer``), an ephemeral token (``Token
auth_tokens/...``), a Firebase App Check token and a Firebase ID token must be ones it issued
and still valid; an ephemeral token also keeps its ``uses`` and its
``new_session_expire_time``, and a session on one ends at its ``expire_time``. Refusals close
with the service's codes and reasons. Tokens are issued by the emulator's REST side
(`agent.emulator.rest`) or by a test (`Authority.issue`).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from agent.emulator import wire
from agent.emulator.routes import Credentials, check_credentials

MAX_TOKENS = 4096
"""Tokens remembered; the oldest is forgotten first (it is then refused)."""

EXPIRED_TOKEN: Final = (
    1008,
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. The access token expired.",
)
EPHEMERAL_EXPIRED: Final = (1008, "The auth token has expired.")
EPHEMERAL_USED: Final = (1008, "The auth token has no uses left.")
EPHEMERAL_SESSION_WINDOW: Final = (
    1008, "The auth token can no longer start new sessions (newSessionExpireTime passed).")
EPHEMERAL_MODEL: Final = (1008, "The auth token does not allow this model.")
APP_CHECK_MISSING: Final = (1008, "Missing App Check token: X-Firebase-AppCheck is required.")
APP_CHECK_INVALID: Final = (1008, "Invalid or expired App Check token.")
AUTH_MISSING: Final = (1008, "Missing Firebase Auth token: Authorization: Firebase is required.")
AUTH_INVALID: Final = (1008, "Invalid or expired Firebase ID token.")


@dataclass(slots=True)
class Issued:
    """A token the emulator handed out. Times are ``time.time()`` seconds."""

    kind: str  # "access", "ephemeral", "app-check", "id", "refresh"
    expires_at: float
    uses_left: int | None = None
    new_session_until: float | None = None
    model: str | None = None


class Authority:
    """The keys and tokens one emulator accepts."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        check_tokens: bool = False,
        require_app_check: bool = False,
        require_firebase_auth: bool = False,
    ) -> None:
        self.api_keys: set[str] = {api_key} if api_key else set()
        """Keys accepted (empty: any); a test rotates keys by changing it."""
        self.check_tokens = check_tokens
        self.require_app_check = require_app_check
        self.require_firebase_auth = require_firebase_auth
        self._tokens: OrderedDict[str, Issued] = OrderedDict()
        self.issued = 0
        self.refused = 0
        self.accepted_tokens = 0

    def issue(self, kind: str, lifetime_s: float, *, prefix: str = "", uses: int | None = None,
              new_session_s: float | None = None, model: str | None = None) -> str:
        """A new token of ``kind`` valid for ``lifetime_s`` seconds from now."""
        now = time.time()
        value = prefix + secrets.token_urlsafe(24)
        self.add(value, Issued(kind, now + lifetime_s, uses,
                               None if new_session_s is None else now + new_session_s, model))
        return value

    def add(self, value: str, issued: Issued) -> None:
        self._tokens[value] = issued
        self.issued += 1
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)

    def lookup(self, value: str | None, kind: str) -> Issued | None:
        """The token if it was issued as ``kind`` and has not expired."""
        issued = self._tokens.get(value or "")
        if issued is None or issued.kind != kind or time.time() >= issued.expires_at:
            return None
        return issued

    def key_ok(self, key: str | None) -> bool:
        return bool(key) and (not self.api_keys or key in self.api_keys)

    def check(self, creds: Credentials, model_id: str | None = None) -> tuple[int, str] | None:
        """None when the connection may open, else the (code, reason) it is closed with. An
        ephemeral token's use is spent here."""
        refusal = self._check(creds, model_id)
        if refusal is not None:
            self.refused += 1
        return refusal

    def _check(self, creds: Credentials, model_id: str | None) -> tuple[int, str] | None:
        if not creds.present:
            return wire.NO_CREDENTIALS
        if self.require_app_check:
            if not creds.app_check:
                return APP_CHECK_MISSING
            if self.lookup(creds.app_check, "app-check") is None:
                return APP_CHECK_INVALID
        if self.require_firebase_auth:
            if creds.scheme != "firebase" or not creds.token:
                return AUTH_MISSING
            if self.lookup(creds.token, "id") is None:
                return AUTH_INVALID
            return None if self.key_ok(creds.api_key) else wire.BAD_API_KEY
        if self.check_tokens and creds.scheme == "token" and creds.token:
            return self._spend_ephemeral(creds.token, model_id)
        if self.check_tokens and creds.scheme == "bearer":
            self.accepted_tokens += 1
            return None if self.lookup(creds.token, "access") else EXPIRED_TOKEN
        accepted: list[str | None] = list(self.api_keys) or [None]
        refusals = [check_credentials(creds, key) for key in accepted]
        return None if None in refusals else refusals[0]

    def _spend_ephemeral(self, value: str, model_id: str | None) -> tuple[int, str] | None:
        issued = self._tokens.get(value)
        now = time.time()
        if issued is None or issued.kind != "ephemeral":
            return wire.BAD_TOKEN
        if now >= issued.expires_at:
            return EPHEMERAL_EXPIRED
        if issued.new_session_until is not None and now >= issued.new_session_until:
            return EPHEMERAL_SESSION_WINDOW
        if issued.uses_left is not None and issued.uses_left <= 0:
            return EPHEMERAL_USED
        if issued.model and model_id and issued.model.rsplit("/", 1)[-1] != model_id:
            return EPHEMERAL_MODEL
        if issued.uses_left is not None:
            issued.uses_left -= 1
        self.accepted_tokens += 1
        return None

    def session_end(self, creds: Credentials) -> float | None:
        """When a session on these credentials must end (an ephemeral token's
        ``expire_time``), or None."""
        if not self.check_tokens or creds.scheme != "token":
            return None
        issued = self._tokens.get(creds.token or "")
        return None if issued is None else issued.expires_at
