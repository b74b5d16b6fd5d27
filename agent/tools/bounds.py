"""Bounds on the model's arguments, checked before anything else looks at them, and a bounded
view of any value for the audit log.

The arguments are untrusted and arrive on the event loop, so the first check must cost little
whatever they hold: `check_bounds` walks at most `MAX_VALUES` values, without recursion, and
stops at the first that breaks a bound. Integers must be what JSON parsers on the way hold
exactly (64 bits), so a ``10**400`` is invalid arguments, not a failure deep inside the agent
(a float that is not finite is named by the schema check).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.tools.errors import ArgumentError

__all__ = [
    "AUDIT_ITEMS",
    "AUDIT_TEXT",
    "INT64",
    "MAX_DEPTH",
    "MAX_KEY_CHARS",
    "MAX_STRING_CHARS",
    "MAX_TOTAL_CHARS",
    "MAX_VALUES",
    "audit_view",
    "check_bounds",
]

MAX_VALUES = 1000
"""Values (objects, lists and scalars) in one call's arguments."""
MAX_DEPTH = 16
"""Nesting of objects and lists in one call's arguments."""
MAX_STRING_CHARS = 16 * 1024
"""Characters in one string argument."""
MAX_KEY_CHARS = 256
"""Characters in one argument name."""
MAX_TOTAL_CHARS = 64 * 1024
"""Characters in all the strings and names of one call's arguments together."""
INT64 = (-(2**63), 2**63 - 1)
"""The integers an argument may be (what every JSON parser on the way holds exactly)."""

AUDIT_TEXT = 256
"""Characters of a string kept in the audit view (the rest is counted in a marker)."""
AUDIT_ITEMS = 32
"""Values of an object or list kept in the audit view (the rest is counted in a marker)."""

_Path = tuple[str | int, ...]


def check_bounds(args: Any) -> None:
    """Raise `ArgumentError` unless ``args`` is plain JSON within every bound above."""
    stack: list[tuple[_Path, Any]] = [((), args)]
    values = chars = 0
    while stack:
        path, value = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise ArgumentError(f"the arguments hold more than {MAX_VALUES} values")
        if len(path) > MAX_DEPTH:
            raise ArgumentError(f"the arguments nest deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            chars += len(value)
            if len(value) > MAX_STRING_CHARS:
                raise ArgumentError(f"{_label(path)} is longer than {MAX_STRING_CHARS} "
                                    "characters")
        elif isinstance(value, bool | float) or value is None:
            pass  # a float that is not finite is the schema's to name ("must be a number")
        elif isinstance(value, int):
            if not INT64[0] <= value <= INT64[1]:
                raise ArgumentError(f"{_label(path)} is a number beyond 64-bit integers")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ArgumentError(f"{_label(path)} has a name that is not text")
                if len(key) > MAX_KEY_CHARS:
                    raise ArgumentError(f"{_label(path)} has a name longer than "
                                        f"{MAX_KEY_CHARS} characters")
                chars += len(key)
                stack.append(((*path, key), item))
        elif isinstance(value, list | tuple):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
        else:
            raise ArgumentError(f"{_label(path)} is not a JSON value")
        if chars > MAX_TOTAL_CHARS:
            raise ArgumentError(f"the arguments hold more than {MAX_TOTAL_CHARS} characters")


def _label(path: _Path) -> str:
    if not path:
        return "the arguments"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"'{text[:80]}'"


def audit_view(value: Any, depth: int = 0) -> Any:
    """A small copy of ``value`` for the audit log: strings, objects and lists cut to
    `AUDIT_TEXT` characters and `AUDIT_ITEMS` values with a marker that counts the rest,
    numbers beyond 64-bit integers as text, nesting cut at `MAX_DEPTH`. Costs no more than
    the view it makes, whatever ``value`` holds."""
    if isinstance(value, str):
        if len(value) <= AUDIT_TEXT:
            return value
        size = len(value.encode("utf-8", "replace"))
        return f"{value[:AUDIT_TEXT]}...(truncated, {size} bytes)"
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        if INT64[0] <= value <= INT64[1]:
            return value
        return f"<integer of {value.bit_length()} bits>"
    if depth >= MAX_DEPTH:
        return "[...]"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i == AUDIT_ITEMS:
                out["..."] = f"(truncated, {len(value)} names)"
                break
            out[audit_view(key, depth + 1) if isinstance(key, str) else repr(type(key))] = (
                audit_view(item, depth + 1))
        return out
    if isinstance(value, list | tuple):
        items = [audit_view(item, depth + 1) for item in value[:AUDIT_ITEMS]]
        if len(value) > AUDIT_ITEMS:
            items.append(f"...(truncated, {len(value)} items)")
        return items
    return f"<{type(value).__name__}>"
