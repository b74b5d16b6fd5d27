"""Confirmation before a risky action: a tool with ``confirm = true`` acts only when asked twice.

The first call does nothing but record what was asked; the answer tells the model to ask the
user and to call again with the same arguments. The action happens on a call with the same
arguments within the tool's window, and no sooner than `MIN_GAP_S` after the request: a
model that calls twice in a row has not asked anyone. A press of the confirm button carries
out the newest request still in its window instead. A different request replaces the
waiting one; an expired one is forgotten. At most one request waits per tool, so the book
is bounded by the number of tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["MIN_CONFIRM_WINDOW_S", "MIN_GAP_S", "ConfirmationBook", "Verdict"]

MIN_GAP_S = 1.0
"""The shortest time between a request and its confirming call (time to ask the user)."""
MIN_CONFIRM_WINDOW_S = 5.0
"""The shortest window a tool may give its user to confirm."""

Verdict = Literal["ask", "too_soon", "confirmed"]


@dataclass(frozen=True, slots=True)
class _Request:
    key: str  # canonical JSON of the validated arguments
    arguments: dict[str, Any]
    at: float
    window_s: float


class ConfirmationBook:
    """The requests waiting for confirmation, one per tool."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Request] = {}

    def check(self, tool: str, args: Mapping[str, Any], window_s: float, now: float) -> Verdict:
        """``confirmed`` (and forgotten) when ``args`` repeat the waiting request of ``tool``
        within ``window_s``; ``too_soon`` when they repeat it within `MIN_GAP_S` (it keeps
        waiting); otherwise ``ask``: this call becomes the waiting request."""
        key = json.dumps(args, sort_keys=True, separators=(",", ":"))
        waiting = self._waiting.get(tool)
        if waiting is not None and waiting.key == key and now - waiting.at <= window_s:
            if now - waiting.at < MIN_GAP_S:
                return "too_soon"
            del self._waiting[tool]
            return "confirmed"
        self._waiting[tool] = _Request(key, dict(args), now, window_s)
        return "ask"

    def take_newest(self, now: float) -> tuple[str, dict[str, Any]] | None:
        """The newest request still in its window, as (tool, arguments), forgotten; None
        when none waits (expired ones are dropped on the way)."""
        live = {t: r for t, r in self._waiting.items() if now - r.at <= r.window_s}
        self._waiting = live
        if not live:
            return None
        tool = max(live, key=lambda t: live[t].at)
        return tool, live.pop(tool).arguments
