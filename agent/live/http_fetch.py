"""One JSON request over HTTPS for the credential providers, bounded and classified.

Token endpoints are called once per connection or per refresh, so the standard library's
``urllib`` is enough; it blocks, so ``fetch_json`` runs it in a worker thread and the event
loop never waits on the network. The answer is read up to `MAX_RESPONSE_BYTES`; a refusal
(HTTP 400, 401, 403, 404) is a permanent ``LiveSessionError`` that names the endpoint, a
network failure, HTTP 429 or 5xx a transient one. No message quotes a body or a header: they
hold credentials.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.live.endpoint import redact_url
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.tls import client_context

MAX_RESPONSE_BYTES = 64 * 1024
"""The most of a token endpoint's answer read."""
TIMEOUT_S = 10.0
"""Seconds for one request, connect and answer."""
_PERMANENT = (400, 401, 403, 404)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A credential is never sent on to wherever a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def request_json(
    url: str,
    body: Mapping[str, Any] | bytes | None,
    headers: Mapping[str, str],
    *,
    what: str,
    ca_file: Path | None = None,
    timeout_s: float = TIMEOUT_S,
    form: bool = False,
) -> dict[str, Any]:
    """POST ``body`` (JSON, or form-encoded bytes with ``form``) to ``url`` and return the JSON
    object answered; GET when ``body`` is None. Blocking. ``what`` names the endpoint in
    messages ("the token server")."""
    shown = f"{what} ({redact_url(url)})"
    data: bytes | None
    if body is None:
        data = None
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header(
        "Content-Type", "application/x-www-form-urlencoded" if form else "application/json"
    )
    for name, value in headers.items():
        request.add_header(name, value)
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=_tls_context(ca_file))
    )
    try:
        with opener.open(request, timeout=timeout_s) as response:
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        raise LiveSessionError(
            LiveErrorCode.FETCH_ERROR,
            f"{shown} refused the request with HTTP {status}"
            + (": check the credential it is given." if status in _PERMANENT else "."),
            http_status=status,
            permanent=status in _PERMANENT,
        ) from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, TLS, a malformed URL
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise LiveSessionError(
            LiveErrorCode.FETCH_ERROR, f"{shown} could not be reached: {reason}."
        ) from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise LiveSessionError(
            LiveErrorCode.PARSE_FAILED,
            f"{shown} answered with more than {MAX_RESPONSE_BYTES} bytes.",
        )
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise LiveSessionError(
            LiveErrorCode.PARSE_FAILED, f"{shown} did not answer with a JSON object."
        )
    return answer


@functools.lru_cache(maxsize=4)
def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """One context per trust store: loading CAs costs tens of milliseconds, which would add to
    every reconnection. The system's store is the Live connections' own shared context."""
    if ca_file is None:
        return client_context()
    return ssl.create_default_context(cafile=str(ca_file))


async def fetch_json(
    url: str,
    body: Mapping[str, Any] | bytes | None,
    headers: Mapping[str, str],
    *,
    what: str,
    ca_file: Path | None = None,
    form: bool = False,
) -> dict[str, Any]:
    """`request_json` in a worker thread."""
    return await asyncio.to_thread(
        request_json, url, body, headers, what=what, ca_file=ca_file, form=form
    )


def text_field(answer: Mapping[str, Any], name: str, what: str, max_chars: int = 4096) -> str:
    """A string field of an answer, present, printable ASCII and bounded."""
    value = answer.get(name)
    if not isinstance(value, str) or not value or len(value) > max_chars or not all(
        "!" <= c <= "~" for c in value
    ):
        raise LiveSessionError(
            LiveErrorCode.PARSE_FAILED, f"{what} answered without a usable {name!r}."
        )
    return value
