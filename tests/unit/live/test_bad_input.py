"""Bad input is counted one by one and logged at a bounded rate."""

from __future__ import annotations

import structlog

from agent.live.bad_input import MAX_KINDS, BadInput


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_counted_whole_and_logged_a_few_lines_per_window() -> None:
    clock = Clock()
    bad = BadInput(burst=5, window_s=10.0, clock=clock)
    with structlog.testing.capture_logs() as logs:
        for _ in range(10_000):
            bad.note("session.message_invalid", "audio", problem="rate")
        clock.now = 10.0
        bad.note("session.message_invalid", "audio", problem="rate")
    assert bad.counts == {"audio": 10_001} and bad.total == 10_001
    assert len(logs) == 6
    assert logs[-1]["unlogged_before"] == 9_995 and logs[-1]["count"] == 10_001


def test_each_kind_has_its_own_allowance() -> None:
    bad = BadInput(burst=1, clock=Clock())
    with structlog.testing.capture_logs() as logs:
        for kind in ("audio", "size", "audio", "size"):
            bad.note("session.message_invalid", kind)
    assert [entry["kind"] for entry in logs] == ["audio", "size"]


def test_kinds_beyond_the_limit_are_counted_as_other() -> None:
    bad = BadInput(clock=Clock())
    with structlog.testing.capture_logs():
        for n in range(MAX_KINDS * 3):
            bad.note("e", f"kind{n}")
    assert len(bad.counts) == MAX_KINDS + 1
    assert bad.counts["other"] == MAX_KINDS * 2
