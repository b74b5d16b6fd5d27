"""The Live client's exceptions, with codes that mirror the Firebase SDK's ``AIErrorCode``."""

from __future__ import annotations

from enum import StrEnum


class LiveErrorCode(StrEnum):
    """What went wrong, in the words of the Firebase SDK's ``AIErrorCode``."""

    ERROR = "error"
    REQUEST_ERROR = "request-error"
    RESPONSE_ERROR = "response-error"
    FETCH_ERROR = "fetch-error"
    SESSION_CLOSED = "session-closed"
    INVALID_CONTENT = "invalid-content"
    NO_API_KEY = "no-api-key"
    NO_MODEL = "no-model"
    NO_PROJECT_ID = "no-project-id"
    PARSE_FAILED = "parse-failed"
    UNSUPPORTED = "unsupported"
    TIMEOUT = "timeout"


class LiveSessionError(Exception):
    """An error from the Live client.

    ``code`` says what kind of error it is. When the error comes from the server closing the
    WebSocket, ``close_code`` and ``close_reason`` carry what the server said (for example
    1007 "Request contains an invalid argument."); ``http_status`` is set when the server refused
    the WebSocket upgrade itself (401, 403, 429 ...). ``permanent`` errors fail the same way on
    every attempt (a malformed endpoint, a credential that cannot be sent): retrying is useless.
    ``credential_refused``: the server refused a credential that a provider can replace; a
    new attempt with a fresh one is worth it (``agent.live.credentials``).
    """

    def __init__(
        self,
        code: LiveErrorCode,
        message: str,
        *,
        close_code: int | None = None,
        close_reason: str | None = None,
        http_status: int | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.permanent = permanent
        self.credential_refused = False
        self.code = code
        self.message = message
        self.close_code = close_code
        self.close_reason = close_reason

    def __str__(self) -> str:
        text = f"{self.message} (live/{self.code})"
        if self.close_code is not None:
            text += f" [close {self.close_code}: {self.close_reason or 'no reason'}]"
        if self.http_status is not None:
            text += f" [HTTP {self.http_status}]"
        return text


class LiveConnectionClosed(LiveSessionError):
    """The WebSocket was closed by the server or by the network.

    Raised by ``receive()`` and the ``send_*`` methods. ``close_code`` is the code from the close
    frame, or 1006 when the connection dropped without one.
    """

    def __init__(self, close_code: int, close_reason: str, *, by_server: bool = True) -> None:
        who = "server" if by_server else "network"
        super().__init__(
            LiveErrorCode.FETCH_ERROR,
            f"The Live connection was closed by the {who}.",
            close_code=close_code,
            close_reason=close_reason,
        )
        self.by_server = by_server


class ProtocolError(ValueError):
    """A frame that does not follow the Live wire protocol (bad JSON, bad base64, wrong shape)."""
