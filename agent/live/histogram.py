"""Fixed-bucket histograms of durations: constant memory however many values are observed.

The counts are kept per bucket (not cumulative) so an observation is one bisect and two
additions; readers such as a Prometheus collector make them cumulative when they are read.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence

__all__ = ["GAP_BOUNDS_S", "LATENCY_BOUNDS_S", "Histogram"]

LATENCY_BOUNDS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Voice and tool-call latency: from a few milliseconds to a slow reply."""

GAP_BOUNDS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Reconnect gaps: from a goAway handover to an outage of ten minutes."""


class Histogram:
    """Counts of observed seconds in buckets with the upper ``bounds`` (and one above them)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BOUNDS_S) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError("bounds must be increasing and not empty")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last bucket: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Count one value; a NaN or a negative value (a clock that went back) is ignored."""
        if not seconds >= 0.0:
            return
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def cumulative(self) -> Iterator[tuple[float, int]]:
        """(upper bound, values at most that) for every bucket, ending with +Inf."""
        total = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            yield bound, total

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (None when empty): an
        over-estimate by at most one bucket, as Prometheus's ``histogram_quantile`` reads it."""
        if self.count == 0:
            return None
        rank = q * self.count
        for bound, total in self.cumulative():
            if total >= rank:
                return bound
        return math.inf  # pragma: no cover - the last cumulative total is the count
