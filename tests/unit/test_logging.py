"""The logging pipeline: JSON for journald, console on a terminal, levels, stdlib routing and
redaction, checked on the rendered text itself."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import warnings

import pytest
import structlog

from agent.logs import (
    MAX_FIELD_BYTES,
    configure_logging,
    flush_logs,
    redact_text,
    register_secret,
)

# Planted secrets: each must be absent from every rendered line.
API_KEY = "AIza" + "SyD-planted_0123456789abcdefghijklmn"
ACCESS_TOKEN = "ya29." + "a0AfB_plantedaccesstoken0123456789"
EPHEMERAL = "auth_tokens/" + "planted0123456789"
PASSWORD = "hunter2-planted"
REGISTERED = "opaque-planted-credential-77"


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/unit/conftest.py


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream=stream)
    structlog.get_logger("agent.live.session").info("session.connected", attempt=2,
                                                    latency_ms=41.5)
    [event] = _json_lines(stream.getvalue())
    assert list(event)[:4] == ["timestamp", "level", "logger", "event"]
    assert event["event"] == "session.connected" and event["level"] == "info"
    assert event["logger"] == "agent.live.session"
    assert (event["attempt"], event["latency_ms"]) == (2, 41.5)
    assert str(event["timestamp"]).endswith("Z")


def test_console_lines_with_colour_on_a_terminal() -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w", encoding="utf-8") as terminal:
        configure_logging("info", "auto", stream=terminal)
        structlog.get_logger("agent.media.audio").warning("audio.dropped", chunks=3)
        text = os.read(primary, 65536).decode("utf-8")
    os.close(primary)
    assert "audio.dropped" in text and "chunks" in text
    assert "\x1b[" in text  # ANSI colour
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_format_without_colour_off_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "console", stream=stream)
    structlog.get_logger("x").info("camera.retry", delay_s=0.5)
    text = stream.getvalue()
    assert "camera.retry" in text and "delay_s=0.5" in text and "\x1b[" not in text


def test_level_filters_and_a_reload_changes_it_for_existing_loggers() -> None:
    stream = io.StringIO()
    log = structlog.get_logger("agent.daemon")  # created before configuration, as modules do
    configure_logging("warning", "json", stream=stream)
    log.info("hidden.info")
    log.warning("shown.warning")
    configure_logging("debug", "json", stream=stream)
    log.debug("shown.debug")
    events = [e["event"] for e in _json_lines(stream.getvalue())]
    assert events == ["shown.warning", "shown.debug"]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud")


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    logging.getLogger("websockets.client").info("connection %s closed", "abc")
    logging.getLogger("gpiozero").debug("below the level")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("pin factory fell back to mock", RuntimeWarning, stacklevel=1)
    configure_logging("debug", "json", stream=stream)
    logging.getLogger("websockets.client").debug("> TEXT '{\"realtimeInput\": ...}' [9000 bytes]")
    logging.getLogger("agent.tools").debug("shown at debug")
    events = _json_lines(stream.getvalue())
    assert events[0]["event"] == "connection abc closed"
    assert events[0]["logger"] == "websockets.client"
    assert events[1]["logger"] == "py.warnings"
    assert "pin factory fell back to mock" in str(events[1]["event"])
    # websockets' per-frame debug trace stays out even at debug level.
    assert [e["event"] for e in events[2:]] == ["shown at debug"]


def test_secrets_never_reach_the_output() -> None:
    """Every way a secret could be logged; the rendered text is grepped for each."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    register_secret(REGISTERED)
    log = structlog.get_logger("agent.live.model")

    class Endpoint:
        def __str__(self) -> str:
            return f"wss://host/ws?key={API_KEY}"

    log.info("session.connecting",
             url=f"wss://generativelanguage.googleapis.com/ws/x?key={API_KEY}&alt=json",
             headers={"x-goog-api-key": API_KEY, "Authorization": f"Bearer {ACCESS_TOKEN}",
                      "X-Firebase-AppCheck": "planted-app-check-token"},
             api_key=PASSWORD, password=PASSWORD, client_secret=PASSWORD,
             nested=[{"token": PASSWORD}, f"ephemeral {EPHEMERAL}"],
             raw=f"key={API_KEY}".encode(), endpoint=Endpoint(),
             note=f"the credential {REGISTERED} was rotated",
             total_token_count=1234, key_path="live.credentials.env")
    log.warning(f"header Authorization: Token {PASSWORD}")
    logging.getLogger("websockets.client").warning(
        "GET /ws?access_token=%s failed", ACCESS_TOKEN)
    try:
        raise ConnectionError(f"refused wss://host/ws?key={API_KEY} with {REGISTERED}")
    except ConnectionError:
        log.exception("session.failed")
    flush_logs()
    text = stream.getvalue()
    for secret in (API_KEY, ACCESS_TOKEN, EPHEMERAL, PASSWORD, REGISTERED,
                   "planted-app-check-token"):
        assert secret not in text, f"{secret!r} leaked"
    events = _json_lines(text)
    first = events[0]
    # What is not secret survives, so the logs stay useful.
    assert first["total_token_count"] == 1234 and first["key_path"] == "live.credentials.env"
    assert first["url"] == ("wss://generativelanguage.googleapis.com/ws/x?key=[REDACTED]"
                            "&alt=json")
    assert first["headers"] == {"x-goog-api-key": "[REDACTED]", "Authorization": "[REDACTED]",
                                "X-Firebase-AppCheck": "[REDACTED]"}
    assert "Traceback" in str(events[-1]["exception"])
    assert "ConnectionError: refused wss://host/ws?key=[REDACTED]" in str(events[-1]["exception"])


def test_a_registered_key_is_redacted_in_its_encoded_forms() -> None:
    import base64
    from urllib.parse import quote

    key = "planted+key/with=signs-0123"
    register_secret(key)
    encoded = (quote(key, safe=""), base64.b64encode(key.encode()).decode(),
               base64.urlsafe_b64encode(key.encode()).decode().rstrip("="))
    text = redact_text(f"GET /x?k={encoded[0]} auth {encoded[1]} raw {key} url {encoded[2]}")
    for form in (key, *encoded):
        assert form not in text
    assert text.count("[REDACTED]") == 4


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_values_json_cannot_hold_still_make_one_line_each(fmt: str) -> None:
    """Integers over 64 bits, hostile nesting and objects whose str() fails: the event is
    written and the caller never sees an exception."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    deep: list[object] = [1]
    for _ in range(5000):
        deep = [deep]
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)
    log = structlog.get_logger("agent.tools.registry")
    log.info("tool.actuated", args={"n": 10**5000, "m": 2**70, 3: -(2**64)}, result=2**64)
    log.info("tool.actuated", args=deep, call_id=Unprintable())
    log.info("tool.actuated", args=[float("inf"), {(1, 2): "tuple key"}])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all("tool.actuated" in line for line in lines)
    if fmt == "json":
        first, second, _ = (json.loads(line) for line in lines)
        assert first["args"] == {"n": "<integer of 16610 bits>", "m": str(2**70),
                                 "3": str(-(2**64))}
        assert first["result"] == str(2**64)
        assert "[...]" in json.dumps(second["args"])
        assert second["call_id"] == "<Unprintable: str() failed with RuntimeError>"


def test_a_huge_field_is_cut_with_a_marker_and_secrets_go_first() -> None:
    key = "planted-in-a-huge-field-0123"
    register_secret(key)
    huge = "y" * (MAX_FIELD_BYTES // 2 - 10) + key + "z" * 3_000_000
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.get_logger("agent.tools.registry").info(
        "tool.actuated", args={"x": huge}, note=huge)
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert len(line) < 3 * MAX_FIELD_BYTES
    redacted = huge.replace(key, "[REDACTED]")
    assert f"(truncated, {len(redacted)} bytes)" in event["note"]
    assert "truncated" in event["args"] and event["args"].startswith('{"x":"yyy')
    assert key[:10] not in line  # redacted whole before it was cut


def test_redact_text_keeps_the_words_around_secrets() -> None:
    assert redact_text("Authorization: Bearer abcdefghijkl0123 sent") == (
        "Authorization: Bearer [REDACTED] sent")
    assert redact_text("GET /x?alt=1&key=abc123&b=2") == "GET /x?alt=1&key=[REDACTED]&b=2"
    assert redact_text("token budget reached; keyboard input") == (
        "token budget reached; keyboard input")


def test_a_closed_stream_never_raises_into_the_caller() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    stream.close()
    structlog.get_logger("x").error("still.fine")
    flush_logs()


def test_lines_from_many_threads_do_not_interleave() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = structlog.get_logger("agent.media.audio")

    def work(n: int) -> None:
        for i in range(200):
            log.info("audio.chunk", thread=n, i=i, pad="x" * 200)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(_json_lines(stream.getvalue())) == 800


def test_rotating_secrets_are_redacted_and_their_registry_stays_bounded() -> None:
    from agent import logs

    tokens = [f"rotating-token-{n:04d}-abcdefgh" for n in range(50)]
    for token in tokens:
        logs.register_secret(token, slot="test.rotating")
    assert len(logs._slots["test.rotating"]) == logs.SLOT_KEEP
    newest = tokens[-1]
    assert newest not in logs.redact_text(f"sent {newest} to the server")
