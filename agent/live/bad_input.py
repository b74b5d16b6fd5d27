"""Bad input from a peer: every piece counted by kind, logged without flooding the journal.

A server that sends thousands of bad frames a second must not turn into thousands of log lines
a second: each (event, kind) pair logs its first ``burst`` occurrences of a window at once, counts
the rest, and the first line of a later window says how many went unlogged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_KINDS = 64
"""(event, kind) pairs tracked; the code uses a fixed vocabulary far below this, so any pair
beyond it is counted under ``other``."""


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    unlogged: int = 0


class BadInput:
    """Counts bad input by kind (``counts``) and logs it at a bounded rate."""

    def __init__(
        self,
        *,
        burst: int = 5,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self.counts: dict[str, int] = {}
        self._windows: dict[tuple[str, str], _Window] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def note(self, event: str, kind: str, **fields: Any) -> None:
        """Count one piece of bad input of ``kind``; log it as ``event`` unless this window
        has had its ``burst`` of lines already."""
        if (event, kind) not in self._windows and len(self._windows) >= MAX_KINDS:
            kind = "other"
        key = (event, kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.started >= self.window_s:
            unlogged = window.unlogged if window is not None else 0
            window = self._windows[key] = _Window(now)
            if unlogged:
                fields["unlogged_before"] = unlogged
        if window.logged >= self.burst:
            window.unlogged += 1
            return
        window.logged += 1
        log.warning(event, kind=kind, count=self.counts[kind], **fields)
