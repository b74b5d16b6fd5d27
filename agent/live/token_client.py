"""Ephemeral tokens from the owner's token server (``edge-agent token-server``), one per
connection.

The device holds no API key: it signs in to the token server with its id and secret (HTTP
Basic over HTTPS) and gets a token good for one session, locked to the model and setup the
server chose, that must start a session within about a minute. The secret is read through
``secret`` before each request, so a rotated secret file is used at once. A refusal (401) is
permanent: the secret or the device's entry on the server must be fixed; a busy or
rate-limiting server (429, 5xx) is retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.live.credentials import Credential
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.http_fetch import request_json, text_field


class TokenServerProvider:
    """A fresh ephemeral token for each connection."""

    def __init__(self, url: str, device_id: str, secret: Callable[[], str], *,
                 secret_file: Path | None = None, ca_file: Path | None = None) -> None:
        self.url = url
        self.device_id = device_id
        self.secret = secret
        self.secret_file = secret_file
        self.ca_file = ca_file

    @property
    def describe(self) -> str:
        where = f" with the device secret {self.secret_file}" if self.secret_file else ""
        return f"the token server{where}"

    @property
    def refreshable(self) -> bool:
        return True

    async def fetch(self) -> Credential:
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> Credential:
        basic = base64.b64encode(f"{self.device_id}:{self.secret()}".encode()).decode()
        try:
            answer = request_json(self.url, b"", {"Authorization": f"Basic {basic}"},
                                  what="the token server", ca_file=self.ca_file)
        except LiveSessionError as exc:
            if exc.http_status in (401, 403):
                secret = f" ({self.secret_file})" if self.secret_file else ""
                exc.message += (f" Check live.credentials.device_id ({self.device_id}) and "
                                f"device_secret_file{secret} against the token server's "
                                "devices file.")
            raise
        token = text_field(answer, "token", "The token server")
        starts_by = answer.get("new_session_expire_time")
        try:
            expires_at = datetime.fromisoformat(str(starts_by)).timestamp()
        except ValueError:
            raise LiveSessionError(LiveErrorCode.PARSE_FAILED,
                                   "The token server answered without a usable "
                                   "'new_session_expire_time'.") from None
        return Credential(token, expires_at, per_connection=True)
