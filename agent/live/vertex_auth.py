"""Vertex AI access tokens from google-auth: a service account key file, or application
default credentials (ADC: ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's, a metadata server).

This module is imported only when the config asks for it (``pip install 'edge-agent[vertex]'``).
Its refresh blocks on the network, so it runs in a worker thread, never on the event loop;
its transport is `UrllibTransport` (the standard library, bounded), so no HTTP library is added
to the device. Tokens carry the ``cloud-platform`` scope and are refreshed by `KeptCredential`
ahead of their expiry (an hour).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import google.auth
import google.auth.credentials
from google.auth import exceptions
from google.auth.transport import Request
from google.oauth2 import service_account

from agent.live.credentials import Credential
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.http_fetch import MAX_RESPONSE_BYTES, TIMEOUT_S

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    data: bytes


class UrllibTransport(Request):
    """google-auth's ``transport.Request`` on urllib: the answer read up to
    `MAX_RESPONSE_BYTES`."""

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout or TIMEOUT_S) as answer:
                return _Response(answer.status, dict(answer.headers),
                                 answer.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as exc:
            with exc:
                return _Response(exc.code, dict(exc.headers), exc.read(MAX_RESPONSE_BYTES))
        except (OSError, ValueError) as exc:
            raise exceptions.TransportError(f"{type(exc).__name__}: {exc}") from None


class GoogleAuthProvider:
    """Access tokens for Vertex AI, refreshed with google-auth in a worker thread."""

    def __init__(self, service_account_file: Path | None = None) -> None:
        self.service_account_file = service_account_file
        self._credentials: google.auth.credentials.Credentials | None = None
        self._transport = UrllibTransport()

    @property
    def describe(self) -> str:
        if self.service_account_file is not None:
            return f"the service account key file {self.service_account_file}"
        return "the application default credentials"

    @property
    def refreshable(self) -> bool:
        return True

    async def fetch(self) -> Credential:
        return await asyncio.to_thread(self._refresh)

    def _load(self) -> google.auth.credentials.Credentials:
        try:
            if self.service_account_file is not None:
                loaded: google.auth.credentials.Credentials = (
                    service_account.Credentials.from_service_account_file(
                        str(self.service_account_file), scopes=[CLOUD_PLATFORM]))
                return loaded
            found, _project = google.auth.default(scopes=[CLOUD_PLATFORM],
                                                  request=self._transport)
            return found
        except (OSError, ValueError, KeyError, exceptions.GoogleAuthError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (
                type(exc).__name__)
            raise LiveSessionError(
                LiveErrorCode.NO_API_KEY,
                f"Vertex AI credentials cannot be loaded from {self.describe}: {reason}. "
                "Fix live.credentials.service_account_file (a service account's JSON key) "
                "or the application default credentials.",
                permanent=True,
            ) from None

    def _refresh(self) -> Credential:
        if self._credentials is None:
            self._credentials = self._load()
        credentials = self._credentials
        try:
            credentials.refresh(self._transport)
        except exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            raise LiveSessionError(
                LiveErrorCode.NO_API_KEY,
                f"The token service refused {self.describe}"
                + ("; retrying." if retryable else
                   ": the key may be revoked or the service account disabled."),
                permanent=not retryable,
            ) from None
        except exceptions.TransportError:
            raise LiveSessionError(
                LiveErrorCode.FETCH_ERROR,
                f"The token service for {self.describe} could not be reached.",
            ) from None
        token = credentials.token
        if not isinstance(token, str) or not token:
            raise LiveSessionError(LiveErrorCode.NO_API_KEY,
                                   f"{self.describe} gave no access token.")
        expiry = credentials.expiry  # naive UTC
        expires_at = None if expiry is None else expiry.replace(tzinfo=UTC).timestamp()
        return Credential(token, expires_at)
