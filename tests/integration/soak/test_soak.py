"""The soak's verdict, and a short run of the whole soak (the full one runs beside the test
suite in tests/run.sh)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.soak.soak import FAULTS, Sample, judge

ROOT = Path(__file__).parents[3]


def _samples(rss_mb: list[float], fds: int = 20, threads: int = 5) -> list[Sample]:
    return [
        Sample(t=30.0 * (i + 1), rss_kb=round(mb * 1024), fds=fds, threads=threads,
               connections=1, faults=i, replies=i, tool_calls=i, emulator_rss_kb=0)
        for i, mb in enumerate(rss_mb)
    ]  # fmt: skip


def test_growth_is_judged_after_the_warm_up_on_medians() -> None:
    # warm-up (40, 48) is left out; one spike in each window is ignored by the median
    steady = _samples([40, 48, 50, 58, 50, 50.5, 50, 51, 60, 51])
    verdict = judge(steady, None)
    assert verdict.problems == () and verdict.rss_kb == pytest.approx(1024)
    leaking = _samples([40, 48, 50, 50, 50, 51, 52, 53, 53, 53])
    assert judge(leaking, None).problems == ("RSS grew by 3.0 MB (limit 2 MB)",)


def test_fds_and_threads_must_not_grow_and_the_daemon_must_live() -> None:
    samples = _samples([50] * 8)
    grown = samples[:5] + [
        Sample(s.t, s.rss_kb, s.fds + 1, s.threads + 1, 1, 0, 0, 0, 0) for s in samples[5:]
    ]
    assert judge(grown, None).problems == ("open fds grew by 1", "threads grew by 1")
    assert judge(samples[:4], 1).problems == ("the daemon exited with 1 during the soak",)
    assert judge(samples[:4], None).rss_kb is None  # too short to judge growth


@pytest.mark.slow
async def test_a_short_soak_runs_the_daemon_through_every_fault() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "tests/soak/soak.py", "--seconds", "24", "--interval", "4",
        "--fault-every", "2", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(90):
        out, _ = await process.communicate()
    text = out.decode()
    assert process.returncode == 0, text
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 6, text
    assert f"faults injected: {len(FAULTS) + 1}" in text
    assert "daemon log lines at error level: 0" in text and "soak: passed" in text
