"""The fuzz tier: hostile input for every parser of outside data, asserting only clean errors.

Bounded so the whole tier stays within a few minutes in CI: each test draws a fixed number of
examples from a derandomized profile (the same cases on every run, so a failure reproduces);
set ``HYPOTHESIS_PROFILE=deep`` for a longer, random search on a workstation.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "deep", max_examples=20_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
