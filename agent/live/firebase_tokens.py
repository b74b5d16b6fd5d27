"""Firebase's tokens for the Firebase AI Logic backends: App Check and Firebase Auth.

- **App Check** through a custom provider, as the iOS and Android SDKs allow: the owner's
  backend (which holds the App Check secret and mints with the Admin SDK) is asked over HTTPS,
  or a local command is run; either answers ``{"token": "...", "ttlMillis": 3600000}`` (the
  Admin SDK's ``createToken`` result) or ``{"token": "...", "expireTime": "<RFC 3339>"}``. Sent
  as ``X-Firebase-AppCheck`` on each connection, fetched again ahead of expiry.
- **Firebase Auth** through its REST API: a sign-in with a custom token (minted by the owner's
  backend for this device) or an anonymous one, then the refresh-token flow for every later ID
  token; a refresh token the service no longer takes leads to one new sign-in. Sent as
  ``Authorization: Firebase <ID token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from agent.live.credentials import Credential
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.http_fetch import MAX_RESPONSE_BYTES, fetch_json, text_field

IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"
SECURE_TOKEN = "https://securetoken.googleapis.com"
COMMAND_TIMEOUT_S = 30.0
MAX_TOKEN_LIFETIME_S = 7 * 86400.0


def _lifetime(answer: dict[str, Any], what: str) -> float:
    """``time.time()`` of expiry from ``ttlMillis``, ``expiresIn``/``expires_in`` (seconds)
    or ``expireTime``."""
    now = time.time()
    for name, scale in (("ttlMillis", 0.001), ("expiresIn", 1.0), ("expires_in", 1.0)):
        if name in answer:
            try:
                seconds = float(answer[name]) * scale
            except (TypeError, ValueError):
                break
            if 0 < seconds <= MAX_TOKEN_LIFETIME_S:
                return now + seconds
            break
    expire = answer.get("expireTime")
    if isinstance(expire, str) and len(expire) <= 64:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(expire.replace("Z", "+00:00")).timestamp()
    raise LiveSessionError(LiveErrorCode.PARSE_FAILED,
                           f"{what} answered without a usable lifetime (ttlMillis, expiresIn or "
                           "expireTime).")


class AppCheckProvider:
    """App Check tokens from the owner's URL or a local command."""

    def __init__(self, *, url: str | None = None, command: Sequence[str] | None = None) -> None:
        if (url is None) == (command is None):
            raise ValueError("an App Check provider needs a URL or a command")
        self.url = url
        self.command = tuple(command or ())

    @property
    def describe(self) -> str:
        if self.url is not None:
            return "the App Check URL (live.credentials.app_check_url)"
        return f"the App Check command {self.command[0]}"

    @property
    def refreshable(self) -> bool:
        return True

    async def fetch(self) -> Credential:
        if self.url is not None:
            answer = await fetch_json(self.url, b"", {}, what="the App Check URL")
        else:
            answer = await self._run()
        token = text_field(answer, "token", self.describe, max_chars=8192)
        return Credential(token, _lifetime(answer, self.describe))

    async def _run(self) -> dict[str, Any]:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        except OSError as exc:
            raise LiveSessionError(LiveErrorCode.NO_API_KEY,
                                   f"{self.describe} cannot be run: {exc.strerror}. Fix "
                                   "live.credentials.app_check_command.",
                                   permanent=True) from None
        assert process.stdout is not None
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                output = await process.stdout.read(MAX_RESPONSE_BYTES + 1)
                if len(output) > MAX_RESPONSE_BYTES:
                    process.kill()
                status = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise LiveSessionError(LiveErrorCode.TIMEOUT, f"{self.describe} took more than "
                                   f"{COMMAND_TIMEOUT_S:g} s.") from None
        if status != 0 or len(output) > MAX_RESPONSE_BYTES:
            raise LiveSessionError(LiveErrorCode.FETCH_ERROR,
                                   f"{self.describe} failed (exit status {status}).")
        try:
            answer = json.loads(output)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise LiveSessionError(LiveErrorCode.PARSE_FAILED,
                                   f"{self.describe} did not print a JSON object.")
        return answer


class FirebaseAuthProvider:
    """Firebase ID tokens: a REST sign-in once, then the refresh-token flow."""

    def __init__(self, api_key: Callable[[], str], *, custom_token: Callable[[], str] | None,
                 on_secret: Callable[[str], None] | None = None,
                 identity_url: str = IDENTITY_TOOLKIT,
                 secure_token_url: str = SECURE_TOKEN) -> None:
        self.api_key = api_key
        self.custom_token = custom_token
        self.on_secret = on_secret
        self.identity_url = identity_url.rstrip("/")
        self.secure_token_url = secure_token_url.rstrip("/")
        self._refresh_token: str | None = None
        self.sign_ins = 0
        self.refreshes = 0

    @property
    def describe(self) -> str:
        how = "a custom token" if self.custom_token is not None else "an anonymous sign-in"
        return f"Firebase Auth ({how})"

    @property
    def refreshable(self) -> bool:
        return True

    async def fetch(self) -> Credential:
        if self._refresh_token is not None:
            try:
                return await self._refresh(self._refresh_token)
            except LiveSessionError as exc:
                if not exc.permanent:
                    raise
                self._refresh_token = None  # revoked or expired: sign in again
        return await self._sign_in()

    async def _sign_in(self) -> Credential:
        query = urlencode({"key": self.api_key()})
        body: dict[str, Any] = {"returnSecureToken": True}
        if self.custom_token is not None:
            method = "accounts:signInWithCustomToken"
            body["token"] = await asyncio.to_thread(self.custom_token)
        else:
            method = "accounts:signUp"
        answer = await fetch_json(f"{self.identity_url}/v1/{method}?{query}", body, {},
                                  what="Firebase Auth's sign-in")
        self.sign_ins += 1
        return self._keep(answer, "idToken", "refreshToken", "expiresIn")

    async def _refresh(self, refresh_token: str) -> Credential:
        query = urlencode({"key": self.api_key()})
        form = urlencode({"grant_type": "refresh_token",
                          "refresh_token": refresh_token}).encode()
        answer = await fetch_json(f"{self.secure_token_url}/v1/token?{query}", form, {},
                                  what="Firebase Auth's token refresh", form=True)
        self.refreshes += 1
        return self._keep(answer, "id_token", "refresh_token", "expires_in")

    def _keep(self, answer: dict[str, Any], id_name: str, refresh_name: str,
              expires_name: str) -> Credential:
        what = "Firebase Auth"
        token = text_field(answer, id_name, what, max_chars=8192)
        refresh = text_field(answer, refresh_name, what, max_chars=8192)
        if self.on_secret is not None:
            self.on_secret(refresh)
        self._refresh_token = refresh
        return Credential(token, _lifetime({"expiresIn": answer.get(expires_name)}, what))
