"""Logging for the whole agent, configured in one place: structlog, with secrets redacted.

`configure_logging` sets one pipeline for everything:

* structlog events (``log = structlog.get_logger(__name__)``; ``log.info("session.connected",
  attempt=2)``) and the standard library's loggers (websockets, gpiozero, asyncio, warnings)
  go through the same processors;
* lines are JSON when stderr is not a terminal (journald keeps one event per line and
  ``journalctl -o cat | jq`` reads them) and coloured console lines on a terminal;
* `redact_secrets` runs last before rendering: API keys and tokens are replaced by
  ``[REDACTED]`` wherever they appear (any field, nested values, URLs with ``?key=`` or
  ``access_token=``, ``Authorization`` headers, tracebacks), values of fields named like
  ``api_key``/``token``/``secret``/``password`` are dropped whole, and every key loaded by
  `agent.config.credentials` is registered with `register_secret`, so it is caught even in
  free text (and in its URL-encoded and base64 forms);
* `bound_fields` runs after it: every line is bounded and always renders. A field whose text
  is longer than `MAX_FIELD_BYTES` keeps its head and tail around a
  ``...(truncated, N bytes)...`` marker; values JSON cannot hold (integers over 64 bits,
  nesting deeper than `MAX_DEPTH`) are written as text. A log call never raises into the
  code that logged.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO
from urllib.parse import quote, quote_plus

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "MAX_DEPTH",
    "MAX_FIELD_BYTES",
    "REDACTED",
    "bound_fields",
    "configure_logging",
    "flush_logs",
    "redact_secrets",
    "redact_text",
    "register_secret",
]

REDACTED = "[REDACTED]"
MAX_FIELD_BYTES = 8192
"""A field longer than this (as rendered) keeps its head and tail around a marker."""
MAX_DEPTH = 16
"""Nesting kept in a logged value; deeper parts are written as ``[...]``."""
_INT64 = (-(2**63), 2**64 - 1)  # the integers JSON renderers (orjson) write as numbers
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}

# A field whose *name* says it holds a credential: its string value is dropped whole.
_SECRET_FIELD = re.compile(
    r"(?i)(^|[_\-.])(api[_\-]?key|key|token|access[_\-]?token|refresh[_\-]?token|secret|"
    r"password|passwd|authorization|cookie|app[_\-]?check)$")
# Credentials inside free text. Each pattern keeps its prefix (group 1) and replaces the rest.
_SECRET_TEXT = [
    # Google API keys, OAuth access tokens, Live API ephemeral tokens: whatever surrounds them.
    re.compile(r"()(?:AIza[0-9A-Za-z_\-]{30,}|ya29\.[0-9A-Za-z_\-.]{10,}|"
               r"auth_tokens/[0-9A-Za-z_\-]{6,})"),
    # URL query parameters: ?key=..., &access_token=...
    re.compile(r"(?i)([?&;](?:key|api_?key|access_token|token|auth|sig|signature|password|"
               r"secret)=)[^&\s#'\"]+"),
    # Header text: "Authorization: Bearer x", 'authorization': 'Token x', x-goog-api-key=...
    re.compile(r"(?i)((?:authorization|x-goog-api-key|x-firebase-appcheck)['\"]?\s*[:=]\s*"
               r"['\"]?(?:(?:bearer|token|firebase|basic)\s+)?)[^\s'\",}]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
]
# One cheap search that every string must pass before the patterns above are applied.
_TRIGGER = re.compile(r"(?i)AIza|ya29\.|auth_tokens/|[?&;](?:key|api_?key|access_token|token|"
                      r"auth|sig|signature|password|secret)=|authorization|x-goog-api-key|"
                      r"x-firebase-appcheck|bearer")
_PLAIN = (int, float, bool, type(None))
_OWN_FIELDS = frozenset({"timestamp", "level", "logger"})  # added by the pipeline itself

_registered: set[str] = set()
_slots: dict[str, deque[frozenset[str]]] = {}
SLOT_KEEP = 4
"""Values kept per slot of rotating credentials (slots are names in the code: bounded)."""
_registered_pattern: re.Pattern[str] | None = None
_registry_lock = threading.Lock()
_stream: TextIO | None = None


def register_secret(value: str, *, slot: str | None = None) -> None:
    """Redact ``value`` wherever it appears in a log line from now on, as written and in its
    URL-encoded and base64 forms (keys shorter than 8 characters are ignored: they would
    redact ordinary words). A credential that is replaced while the agent runs (an access
    token, an ephemeral token) names its ``slot``: the newest `SLOT_KEEP` values of a slot are
    kept, so the registry stays bounded however often tokens are refreshed."""
    global _registered_pattern
    value = value.strip()
    if len(value) < 8:
        return
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value),
             base64.b64encode(raw).decode().rstrip("="),
             base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    with _registry_lock:
        if slot is None:
            _registered.update(forms)
        else:
            _slots.setdefault(slot, deque(maxlen=SLOT_KEEP)).append(frozenset(forms))
        everything = set(_registered)
        for values in _slots.values():
            everything.update(*values)
        ordered = sorted(everything, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact_text(text: str) -> str:
    """``text`` with every credential it contains replaced by ``[REDACTED]``."""
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if not _TRIGGER.search(text):
        return text
    for regex in _SECRET_TEXT:
        text = regex.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= MAX_DEPTH:
        return "[...]"  # what hostile nesting hides below here is not logged at all
    if isinstance(value, Mapping):
        return {_safe_str(k): _redact_field(_safe_str(k), v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
        clean = redact_text(text)
        return value if clean == text else clean
    # Other objects are rendered with str()/repr() later: check what they would print.
    try:
        text = str(value)
    except Exception:  # it would not print at all: say what it is instead
        return _safe_str(value)
    clean = redact_text(text)
    return value if clean == text else clean


def _safe_str(value: object) -> str:
    """``str(value)`` for any object: an integer too long for ``str()`` or an object whose
    ``__str__`` fails gives a short description instead of an exception."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
        return f"<integer of {value.bit_length()} bits>"
    try:
        return str(value)
    except Exception as exc:
        return f"<{type(value).__name__}: str() failed with {type(exc).__name__}>"


def _redact_field(name: str, value: Any, depth: int = 0) -> Any:
    if _SECRET_FIELD.search(name) and isinstance(value, str | bytes | bytearray) and value:
        return REDACTED
    return _redact_value(value, depth)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: remove credentials from every field of the event."""
    for name, value in list(event_dict.items()):
        if name not in _OWN_FIELDS:
            event_dict[name] = _redact_field(name, value)
    return event_dict


def bound_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor (after `redact_secrets`): every field renders, and within
    `MAX_FIELD_BYTES`."""
    for name, value in list(event_dict.items()):
        if isinstance(value, str):
            if len(value) > MAX_FIELD_BYTES // 4:  # a character is at most 4 bytes
                encoded = value.encode("utf-8", "replace")
                if len(encoded) > MAX_FIELD_BYTES:
                    event_dict[name] = _truncated(encoded)
        elif not isinstance(value, bool | float | type(None)):
            event_dict[name] = _bounded(value)
    return event_dict


def _bounded(value: Any) -> Any:
    """``value`` itself when JSON holds it within the bound, else its (truncated) text."""
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else _safe_str(value)
    try:
        encoded = orjson.dumps(value, default=_safe_str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # an integer over 64 bits somewhere inside
        value = _plain(value, 0)
        encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    if len(encoded) > MAX_FIELD_BYTES:
        return _truncated(encoded)
    return value


def _plain(value: Any, depth: int) -> Any:
    """A copy of ``value`` that JSON holds: big integers and other objects as text."""
    if isinstance(value, str | bool | float | type(None)):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else _safe_str(value)
    if depth >= MAX_DEPTH:
        return "[...]"
    if isinstance(value, Mapping):
        return {_safe_str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    return _safe_str(value)


def _truncated(encoded: bytes) -> str:
    keep = MAX_FIELD_BYTES // 2
    head = encoded[:keep].decode("utf-8", "ignore")
    tail = encoded[-keep // 4:].decode("utf-8", "ignore")
    return f"{head}...(truncated, {len(encoded)} bytes)...{tail}"


class _LineLogger:
    """Writes one rendered line per event; a closed or broken stream never raises into the
    code that logged (the line is lost, which is all that can be done)."""

    def __init__(self, stream: TextIO, name: str, lock: threading.Lock) -> None:
        self.name = name
        self._stream = stream
        self._lock = lock  # one per stream: lines from threads never interleave

    def msg(self, message: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = msg


def _add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", "")
    if name and "logger" not in event_dict:
        event_dict["logger"] = name
    return event_dict


_FIRST = ("timestamp", "level", "logger", "event")


def _json_dumps(event_dict: MutableMapping[str, Any], **_: Any) -> str:
    # The fields a reader scans for come first; the event's own values follow.
    ordered = {k: event_dict[k] for k in _FIRST if k in event_dict}
    ordered.update(event_dict)
    return orjson.dumps(ordered, default=_safe_str,
                        option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _never_raising(renderer: Processor) -> Processor:
    """``renderer``, but an event it cannot render becomes a line saying so (with the event's
    name) instead of an exception in the code that logged."""

    def render(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
        # Renderers pop fields as they go: keep what the fallback line needs first.
        name = _safe_str(event_dict.get("event", ""))[:200]
        level = _safe_str(event_dict.get("level", method_name))[:20]
        try:
            return renderer(logger, method_name, event_dict)
        except Exception as exc:
            fallback = {"event": name, "level": level,
                        "log_error": f"the event could not be rendered ({type(exc).__name__})"}
            return renderer(logger, method_name, fallback)

    return render


class _StdlibBridge(logging.Handler):
    """Routes records of the standard library's loggers into the structlog pipeline."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, record.getMessage(), **fields)
        except Exception:  # a broken record must not break the caller
            self.handleError(record)


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    *,
    stream: TextIO | None = None,
) -> None:
    """Set up logging for the process; safe to call again (SIGHUP) with new settings.

    Args:
        level: "debug", "info", "warning", "error" or "critical".
        fmt: "json" (one JSON object per line), "console" (readable, coloured on a
            terminal unless ``NO_COLOR`` is set), or "auto": console on a terminal, else JSON.
        stream: where lines go (default: stderr, which systemd connects to the journal).
    """
    global _stream
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    out = stream if stream is not None else sys.stderr
    _stream = out
    tty = _isatty(out)
    lock = threading.Lock()
    console = fmt == "console" or (fmt == "auto" and tty)
    renderer: Processor
    if console:
        renderer = structlog.dev.ConsoleRenderer(
            colors=tty and "NO_COLOR" not in os.environ,
            exception_formatter=structlog.dev.plain_traceback)
        stamp = structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
        stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            stamp,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            bound_fields,
            _never_raising(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=lambda *args: _LineLogger(out, str(args[0]) if args else "", lock),
        # Not cached: a reload that changes the level must reach module-level loggers too.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(LEVELS[level])


# Libraries whose debug output is a trace of every frame (base64 audio included): kept at
# info even when the agent logs at debug.
_CHATTY = ("websockets", "asyncio", "PIL")


def _route_stdlib(level: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdlibBridge)]:
        root.removeHandler(handler)
    root.addHandler(_StdlibBridge())
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)


def flush_logs() -> None:
    """Flush the log stream (before exit)."""
    stream = _stream
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
