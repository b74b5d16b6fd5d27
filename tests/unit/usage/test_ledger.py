"""Usage per day and modality: what one report counts, the days, and the file across restarts,
including files that are broken or hostile."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
import structlog

from agent.live.types import LiveUsageMetadata
from agent.usage import DayUsage, UsageLedger, tokens_of
from agent.usage.ledger import KEEP_DAYS, MAX_FILE_BYTES

DAY = date(2026, 12, 6)


def report(prompt: int = 100, response: int = 50, **details: object) -> LiveUsageMetadata:
    return LiveUsageMetadata(prompt_token_count=prompt, response_token_count=response,
                             total_token_count=prompt + response, details=dict(details))


def audio_turn() -> LiveUsageMetadata:
    return report(100, 50, promptTokensDetails=[{"modality": "AUDIO", "tokenCount": 60},
                                                {"modality": "TEXT", "tokenCount": 40}],
                  responseTokensDetails=[{"modality": "AUDIO", "tokenCount": 50}])


class Clock:
    def __init__(self) -> None:
        self.day = DAY

    def __call__(self) -> date:
        return self.day


def test_a_report_counts_each_modality_by_direction() -> None:
    assert tokens_of(audio_turn()) == {("input", "AUDIO"): 60, ("input", "TEXT"): 40,
                                       ("output", "AUDIO"): 50}


def test_vertex_details_tool_use_thinking_and_undetailed_tokens() -> None:
    usage = LiveUsageMetadata(
        prompt_token_count=30, response_token_count=20, tool_use_prompt_token_count=7,
        thoughts_token_count=5,
        details={"candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 15}],
                 "promptTokensDetails": [{"modality": "SMELL", "tokenCount": 10}]})
    assert tokens_of(usage) == {("input", "OTHER"): 30, ("input", "TEXT"): 7,
                                ("output", "TEXT"): 15 + 5, ("output", "OTHER"): 5}


@pytest.mark.parametrize("details", [
    "AUDIO", [1, None], [{"modality": "AUDIO", "tokenCount": -5}],
    [{"modality": "AUDIO", "tokenCount": True}], [{"modality": "AUDIO", "tokenCount": 2**70}],
    [{"modality": "AUDIO", "tokenCount": "60"}],
])
def test_details_of_another_shape_are_skipped(details: object) -> None:
    assert tokens_of(report(100, 0, promptTokensDetails=details)) == {("input", "OTHER"): 100}


def test_details_larger_than_the_count_add_no_negative_rest() -> None:
    got = tokens_of(report(10, 0, promptTokensDetails=[{"modality": "AUDIO", "tokenCount": 90}]))
    assert got == {("input", "AUDIO"): 90}


def test_cost_uses_the_price_of_each_direction_and_modality() -> None:
    day = DayUsage(DAY)
    day.add({("input", "AUDIO"): 1_000_000, ("output", "AUDIO"): 500_000})
    prices = {("input", "AUDIO"): 3.0, ("output", "AUDIO"): 12.0}
    assert day.cost(lambda d, m: prices[(d, m)]) == pytest.approx(9.0)


def test_days_change_with_the_clock_and_the_finished_day_is_told_once() -> None:
    clock = Clock()
    ledger = UsageLedger(None, today=clock)
    ledger.record(audio_turn())
    ledger.record(audio_turn())
    assert ledger.roll() is None
    clock.day = date(2026, 12, 7)
    finished = ledger.roll()
    assert finished is not None and finished.day == DAY
    assert finished.total == 300 and finished.reports == 2
    assert ledger.roll() is None
    assert ledger.current().total == 0
    assert ledger.since_start[("input", "AUDIO")] == 120


def test_usage_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    first = UsageLedger(path, today=Clock())
    first.record(audio_turn())
    first.save()
    assert not first.dirty
    again = UsageLedger(path, today=Clock())
    again.load()
    assert again.current().tokens == first.current().tokens
    assert again.current().reports == 1
    assert again.since_start == {}  # counters of the new process start at zero
    assert [p.name for p in tmp_path.iterdir()] == ["usage.json"]  # no temporary file left


def test_only_the_newest_days_are_kept(tmp_path: Path) -> None:
    clock = Clock()
    ledger = UsageLedger(tmp_path / "usage.json", today=clock)
    for n in range(KEEP_DAYS + 10):
        clock.day = date.fromordinal(DAY.toordinal() + n)
        ledger.record(audio_turn())
    assert len(ledger.days) == KEEP_DAYS
    assert min(ledger.days) == date.fromordinal(DAY.toordinal() + 10)


@pytest.mark.parametrize("content", [
    b"\x00\xff not json",
    b"[]",
    b'{"format": 2, "days": {}}',
    b'{"format": 1, "days": []}',
    b'{"format": 1, "days": {"yesterday": {"tokens": {}}}}',
    b'{"format": 1, "days": {"2026-12-06": {"tokens": {"input.AUDIO": -1}}}}',
    b'{"format": 1, "days": {"2026-12-06": {"tokens": {"input.AUDIO": true}}}}',
    b'{"format": 1, "days": {"2026-12-06": {"tokens": {"sideways.AUDIO": 1}}}}',
    b'{"format": 1, "days": {"2026-12-06": {"tokens": {"input.AUDIO": 1e999}}}}',
    b'{"format": 1, "days": {"2026-12-06": {"tokens": {}, "reports": 99999999999999999999}}}',
    b"[" * 100_000,
    b'{"format": 1, "days": {}, "pad": "' + b"x" * MAX_FILE_BYTES + b'"}',
])
def test_a_bad_file_is_set_aside_with_a_warning_and_counting_starts_afresh(
    tmp_path: Path, content: bytes,
) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(content)
    ledger = UsageLedger(path, today=Clock())
    with structlog.testing.capture_logs() as logs:
        ledger.load()
    assert [e["event"] for e in logs] == ["usage.file_invalid"]
    assert ledger.days == {}
    assert (tmp_path / "usage.json.corrupt").read_bytes() == content
    ledger.record(audio_turn())
    ledger.save()
    assert json.loads(path.read_text())["days"]["2026-12-06"]["reports"] == 1


def test_a_folder_in_place_of_the_file_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.mkdir()
    ledger = UsageLedger(path, today=Clock())
    with structlog.testing.capture_logs() as logs:
        ledger.load()
        ledger.record(audio_turn())
        ledger.save()
    assert [e["event"] for e in logs] == ["usage.file_unreadable", "usage.save_failed"]
    assert ledger.dirty  # tried again at the next save
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    ledger = UsageLedger(path, today=Clock())
    ledger.record(audio_turn())
    ledger.save()
    inode = os.stat(path).st_ino
    ledger.record(audio_turn())
    ledger.save()
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert json.loads(path.read_text())["days"]["2026-12-06"]["reports"] == 2
