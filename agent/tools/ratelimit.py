"""Per-tool rate limiting: at most N accepted calls in any sliding window of S seconds."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from agent.tools.spec import RateLimit

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """Sliding-window limiter driven by an injectable monotonic ``clock``."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._accepted: deque[float] = deque()

    def try_acquire(self) -> float | None:
        """Count one call and return None, or return the seconds until one would be allowed."""
        now = self._clock()
        window_start = now - self.limit.per_s
        while self._accepted and self._accepted[0] <= window_start:
            self._accepted.popleft()
        if len(self._accepted) >= self.limit.calls:
            return self._accepted[0] + self.limit.per_s - now
        self._accepted.append(now)
        return None
