"""The emulator's REST side: the token endpoints clients fetch credentials from.

- ``POST /{version}/auth_tokens``: the Gemini API's ephemeral token creation, as google-genai's
  ``auth_tokens.create`` calls it (``x-goog-api-key``; ``uses``, ``expireTime``,
  ``newSessionExpireTime``, ``bidiGenerateContentSetup``); answers ``{"name":
  "auth_tokens/..."}``.
- ``POST /v1/accounts:signInWithCustomToken``, ``POST /v1/accounts:signUp`` (anonymous) and
  ``POST /v1/token`` (``grant_type=refresh_token``): Firebase Auth's REST sign-in and refresh,
  answering an ID token, a refresh token and ``expiresIn``.
- ``POST /app-check/token``: an App Check token as the owner's backend would hand one out
  (``{"token", "ttlMillis"}``), for the agent's App Check URL provider.
- ``POST /oauth2/token``: an OAuth access token for a service account's signed JWT assertion
  (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``), as google-auth asks for one.
  The assertion's signature is not checked: the emulator holds no public keys.

Lifetimes are ``EmulatorConfig.token_lifetimes`` (seconds of wall-clock time). It is plain
HTTP/1.1 on asyncio, one request per connection, bounded: `MAX_HEAD_BYTES` of request line
and headers, `MAX_BODY_BYTES` of body, `READ_TIMEOUT_S` to send them. Errors are the Google
APIs' JSON error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import structlog

from agent.emulator.auth import Authority, Issued
from agent.emulator.config import TokenLifetimes

log = structlog.get_logger(__name__)

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024
READ_TIMEOUT_S = 10.0


class HttpError(Exception):
    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


class RestServer:
    """Serves the token endpoints for one emulator's `Authority`."""

    def __init__(self, authority: Authority, lifetimes: TokenLifetimes,
                 host: str = "127.0.0.1") -> None:
        self.authority = authority
        self.lifetimes = lifetimes
        self.host = host
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
        except HttpError as exc:
            status, body = exc.status, {"error": {"code": exc.status, "message": exc.message,
                                                  "status": exc.reason}}
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            writer.close()
            return
        data = json.dumps(body).encode()
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json; charset=UTF-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(READ_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD_BYTES:
                raise HttpError(431, "Request header fields too large.", "INVALID_ARGUMENT")
            lines = head.decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            target = rest.rpartition(" ")[0]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise HttpError(400, "Bad Content-Length.", "INVALID_ARGUMENT") from None
            if not 0 <= length <= MAX_BODY_BYTES:
                raise HttpError(413, "Request body too large.", "INVALID_ARGUMENT")
            raw = await reader.readexactly(length)
        self.requests += 1
        if method != "POST":
            raise HttpError(405, "Method not allowed.", "INVALID_ARGUMENT")
        path, _, query_text = target.partition("?")
        query = {k: v[0] for k, v in parse_qs(query_text).items()}
        key = headers.get("x-goog-api-key") or query.get("key")
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body: Any = {k: v[0] for k, v in parse_qs(raw.decode("latin-1")).items()}
        else:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise HttpError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT") from None
        if not isinstance(body, dict):
            raise HttpError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        log.info("emulator.rest", path=path)
        if path.endswith("/auth_tokens"):
            return 200, self._ephemeral(key, body)
        if path.endswith("/accounts:signInWithCustomToken") or path.endswith("/accounts:signUp"):
            return 200, self._sign_in(key, body, custom=path.endswith("CustomToken"))
        if path.endswith("/token") and body.get("grant_type") == "refresh_token":
            return 200, self._refresh(key, body)
        if path.endswith("/oauth2/token"):
            return 200, self._access(body)
        if path.endswith("/app-check/token"):
            return 200, self._app_check(headers)
        raise HttpError(404, f"Unknown method {path[:80]!r}.", "NOT_FOUND")

    def _require_key(self, key: str | None) -> None:
        if not self.authority.key_ok(key):
            raise HttpError(400 if key else 403, "API key not valid. Please pass a valid API key.",
                            "INVALID_ARGUMENT" if key else "PERMISSION_DENIED")

    def _ephemeral(self, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        self._require_key(key)
        now = time.time()
        uses = body.get("uses", 1)
        if not isinstance(uses, int) or isinstance(uses, bool) or uses < 0:
            raise HttpError(400, "uses must be a non-negative integer.", "INVALID_ARGUMENT")
        expires = _time(body.get("expireTime"), now + self.lifetimes.ephemeral_default)
        new_session = _time(body.get("newSessionExpireTime"),
                            now + self.lifetimes.ephemeral_new_session_default)
        if expires <= now or new_session <= now:
            raise HttpError(400, "expireTime and newSessionExpireTime must be in the future.",
                            "INVALID_ARGUMENT")
        setup = body.get("bidiGenerateContentSetup")
        model = setup.get("model") if isinstance(setup, dict) else None
        value = "auth_tokens/" + secrets.token_urlsafe(24)
        self.authority.add(value, Issued("ephemeral", expires, uses or None, new_session,
                                         model if isinstance(model, str) else None))
        return {"name": value}

    def _sign_in(self, key: str | None, body: dict[str, Any], *, custom: bool) -> dict[str, Any]:
        self._require_key(key)
        if custom and not (isinstance(body.get("token"), str) and body["token"]):
            raise HttpError(400, "INVALID_CUSTOM_TOKEN", "INVALID_ARGUMENT")
        return self._id_tokens()

    def _refresh(self, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        self._require_key(key)
        if self.authority.lookup(body.get("refresh_token"), "refresh") is None:
            raise HttpError(400, "INVALID_REFRESH_TOKEN", "INVALID_ARGUMENT")
        tokens = self._id_tokens()
        return {"id_token": tokens["idToken"], "refresh_token": tokens["refreshToken"],
                "expires_in": tokens["expiresIn"], "token_type": "Bearer"}

    def _id_tokens(self) -> dict[str, Any]:
        life = self.lifetimes.id_token
        return {
            "idToken": self.authority.issue("id", life, prefix="eyJ"),
            "refreshToken": self.authority.issue("refresh", 365 * 86400.0, prefix="AMf"),
            "expiresIn": f"{life:g}", "localId": "emulated-user",
        }

    def _access(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not \
                body.get("assertion"):
            raise HttpError(400, "invalid_grant", "INVALID_ARGUMENT")
        life = self.lifetimes.access
        return {"access_token": self.authority.issue("access", life, prefix="ya29.emu-"),
                "expires_in": max(int(life), 1), "token_type": "Bearer"}

    def _app_check(self, headers: dict[str, str]) -> dict[str, Any]:
        life = self.lifetimes.app_check
        return {"token": self.authority.issue("app-check", life, prefix="appcheck-"),
                "ttlMillis": int(life * 1000)}


def _time(value: Any, default: float) -> float:
    """An RFC 3339 time from a request, as ``time.time()`` seconds."""
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > 64:
        raise HttpError(400, "Invalid timestamp.", "INVALID_ARGUMENT")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HttpError(400, "Invalid timestamp.", "INVALID_ARGUMENT") from None
