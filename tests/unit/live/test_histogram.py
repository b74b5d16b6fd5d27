"""Fixed-bucket histograms: constant memory, cumulative reads, quantiles by bucket."""

from __future__ import annotations

import math

import pytest

from agent.live.histogram import GAP_BOUNDS_S, LATENCY_BOUNDS_S, Histogram


def test_values_land_in_the_bucket_of_their_upper_bound() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0, 3.0):
        h.observe(value)
    assert h.counts == [2, 1, 2]
    assert list(h.cumulative()) == [(0.1, 2), (1.0, 3), (math.inf, 5)]
    assert h.count == 5
    assert h.sum == pytest.approx(5.65)


def test_memory_does_not_grow_with_observations() -> None:
    h = Histogram()
    for n in range(100_000):
        h.observe(n / 1000)
    assert len(h.counts) == len(LATENCY_BOUNDS_S) + 1
    assert h.count == 100_000


@pytest.mark.parametrize("value", [-0.001, math.nan])
def test_a_clock_that_went_back_is_ignored(value: float) -> None:
    h = Histogram()
    h.observe(value)
    assert h.count == 0 and h.sum == 0.0


def test_quantiles_read_the_upper_bound_of_their_bucket() -> None:
    h = Histogram(GAP_BOUNDS_S)
    assert h.quantile(0.5) is None
    for value in [0.2] * 98 + [50.0, 700.0]:
        h.observe(value)
    assert h.quantile(0.5) == 0.25
    assert h.quantile(0.99) == 60.0
    assert h.quantile(1.0) == math.inf


@pytest.mark.parametrize("bounds", [(), (1.0, 0.5), (1.0, 1.0)])
def test_bounds_must_increase(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        Histogram(bounds)
