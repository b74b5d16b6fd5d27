"""The URL and headers are checked before a connection is opened: what can never work is a
permanent error that says what to fix and never quotes a credential."""

from __future__ import annotations

import pytest

from agent.live.endpoint import check_headers, check_url, redact_url
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.recovery import FailureKind, classify


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:notaport",
        "ws://127.0.0.1:99999",
        "ws://",
        "http://127.0.0.1:8765",
        "ws://[::1",
        "ws://a b/",
        "ws://host/\x00",
        "ws://host/path\n",
    ],
)
def test_a_malformed_endpoint_is_permanent(url: str) -> None:
    with pytest.raises(LiveSessionError) as info:
        check_url(url + "?key=secret-in-query")
    assert info.value.permanent
    assert classify(info.value, during_handshake=True, resuming=False) is FailureKind.FATAL
    assert "secret-in-query" not in str(info.value)
    assert "endpoint" in str(info.value)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8765", "wss://example.com/ws/x?key=k",
                                 "ws://[::1]:80/a"])
def test_good_endpoints_pass(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("\ufeffAIzaSyA-key-material", "byte order mark"),
        ("AIzaSyA-key\n", "control character"),
        ("AIzaSyA\x00key", "control character"),
        ("AIzaSyA-kéy", "not ASCII"),
    ],
)
def test_a_credential_no_header_can_carry_is_permanent_and_never_quoted(
    value: str, what: str
) -> None:
    with pytest.raises(LiveSessionError) as info:
        check_headers({"x-goog-api-client": "edge-agent", "x-goog-api-key": value})
    message = str(info.value)
    assert info.value.permanent and info.value.code is LiveErrorCode.NO_API_KEY
    assert "x-goog-api-key" in message and what in message
    assert "key-material" not in message and "AIzaSyA" not in message


def test_redacted_urls_keep_no_query_and_no_user_info() -> None:
    assert redact_url("wss://user:pw@host:1/p?key=k#f") == "wss://...@host:1/p"
    assert redact_url("ws://h") == "ws://h"
