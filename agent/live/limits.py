"""How much of each server field the client accepts.

Every field a server sends is input. A real Live service stays far inside these bounds; a field
outside them is dropped where it is parsed, with a counted warning, and nothing downstream ever
allocates in proportion to it.
"""

from __future__ import annotations

from typing import Any

MIN_AUDIO_RATE = 8_000
MAX_AUDIO_RATE = 48_000
"""Sample rates of audio the client plays. The service speaks at 24 kHz; 8-48 kHz holds every
rate speech is sent at, and bounds what a resampler costs per input byte (at most 3x up to the
model's 24 kHz, 6x up to a 48 kHz speaker)."""

MAX_MIME_CHARS = 128
"""A mime type with its parameters (``audio/pcm;rate=24000`` is 20)."""

MAX_PARTS = 64
"""Parts in one ``modelTurn``; the service sends one or two. Extra parts are dropped."""

MAX_TEXT_CHARS = 32_768
"""A text part or one transcript fragment (fragments are words or sentences)."""

MAX_FUNCTION_CALLS = 32
"""Calls in one ``toolCall``; extra calls are dropped (each would start a handler)."""

MAX_NAME_CHARS = 128
"""A function name (the service allows 64)."""

MAX_ID_CHARS = 256
"""A function call id, or an id in a ``toolCallCancellation``."""

MAX_CANCELLED_IDS = 64
"""Ids in one ``toolCallCancellation``."""

MAX_HANDLE_CHARS = 4_096
"""A session resumption handle: it goes back to the server in every resuming setup."""

MAX_SHORT_TEXT_CHARS = 256
"""Session ids, reasons, statuses and signal names."""

MAX_JSON_DEPTH = 32
MAX_JSON_SIZE = 65_536
"""Function call arguments and free-form objects (grounding, usage details, parts the client
does not model): nesting depth, and size as values plus characters of every key and string."""

MAX_GO_AWAY_S = 600.0
"""A goAway's ``timeLeft``: the service ends connections after about ten minutes, so a notice
cannot be further away than that. Longer ones are taken as this long."""

INT64_MAX = 2**63 - 1
"""Token counts and message indexes are int64 on the wire."""


def audio_rate_problem(mime_type: str) -> str | None:
    """Why an ``audio/*`` mime type cannot be played, or None when it can (no ``rate=``
    parameter means the service's 24 kHz)."""
    for param in mime_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() != "rate":
            continue
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 6):
            return f"audio rate {value[:16]!r} is not a number of Hz"
        if not MIN_AUDIO_RATE <= int(value) <= MAX_AUDIO_RATE:
            return f"audio rate {value} Hz is outside {MIN_AUDIO_RATE}..{MAX_AUDIO_RATE} Hz"
        return None
    return None


def json_problem(
    value: Any, max_depth: int = MAX_JSON_DEPTH, max_size: int = MAX_JSON_SIZE
) -> str | None:
    """Why a parsed JSON value is too deep or too large, or None when it is within bounds.

    Walks at most ``max_size`` values, so the check itself costs no more than the bound.
    """
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        size += 1 + (len(item) if isinstance(item, (dict, list, str)) else 0)
        if size > max_size:
            return f"larger than {max_size} (values and characters)"
        if isinstance(item, dict):
            for key, child in item.items():
                size += len(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None
