"""The system test's one expensive fixture (build, boot, read back) and its timing table."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.system.findings import Findings
from tests.system.plumbing import SystemTestError
from tests.system.run import Outcome, check_host, run_system_test

_OUTCOMES: list[Outcome] = []


@pytest.fixture(scope="session")
def system_run() -> Iterator[Outcome]:
    """One run of the whole system test. Skipped without root; as root, anything missing
    fails (CI runs as root, so it cannot pass by skipping)."""
    if os.geteuid() != 0:
        pytest.skip("the system test needs root: it debootstraps, chroots and boots a VM")
    try:
        check_host()
    except SystemTestError as exc:
        pytest.fail(str(exc), pytrace=False)
    outcome = run_system_test()
    _OUTCOMES.append(outcome)
    if outcome.logs is None:
        pytest.fail(f"the VM left no logs: {outcome.error}", pytrace=False)
    yield outcome


@pytest.fixture(scope="session")
def found(system_run: Outcome) -> Findings:
    assert system_run.logs is not None
    return Findings(system_run.logs)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for outcome in _OUTCOMES:
        terminalreporter.section("system test: seconds per phase")
        for line in outcome.phases.table().splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"wall time: {outcome.wall_s:.1f} s; logs: {outcome.logs}")
