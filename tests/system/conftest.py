"""The system test's one expensive fixture (build, boot, read back), its options, and its
timing and memory tables."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.system.arch import ARCHES, Arch
from tests.system.findings import Findings
from tests.system.plumbing import SystemTestError
from tests.system.run import Outcome, check_host, run_system_test

_RUNS: list[tuple[Arch, Outcome]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("system test")
    group.addoption("--system-arch", choices=sorted(ARCHES), default="amd64",
                    help="the VM's architecture: amd64 (bookworm) or arm64 (trixie, "
                    "Cortex-A53, 512 MB)")
    group.addoption("--system-prebuilt", action="store_true",
                    help="boot the image the last `python -m tests.system.run --build-only` "
                    "left instead of building one")


@pytest.fixture(scope="session")
def arch(request: pytest.FixtureRequest) -> Arch:
    return ARCHES[request.config.getoption("--system-arch")]


@pytest.fixture(scope="session")
def system_run(request: pytest.FixtureRequest, arch: Arch) -> Iterator[Outcome]:
    """One run of the whole system test. Skipped without root; as root, anything missing
    fails (CI runs as root, so it cannot pass by skipping)."""
    if os.geteuid() != 0:
        pytest.skip("the system test needs root: it debootstraps, chroots and boots a VM")
    try:
        check_host(arch)
    except SystemTestError as exc:
        pytest.fail(str(exc), pytrace=False)
    prebuilt = bool(request.config.getoption("--system-prebuilt"))
    outcome = run_system_test(arch=arch, build=not prebuilt)
    _RUNS.append((arch, outcome))
    if outcome.logs is None:
        pytest.fail(f"the VM left no logs: {outcome.error}", pytrace=False)
    yield outcome


@pytest.fixture(scope="session")
def found(system_run: Outcome) -> Findings:
    assert system_run.logs is not None
    return Findings(system_run.logs)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for arch, outcome in _RUNS:
        terminalreporter.section(f"system test ({arch.name}): seconds per phase")
        for line in outcome.phases.table().splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"wall time: {outcome.wall_s:.1f} s; logs: {outcome.logs}")
        if outcome.logs is None:
            continue
        terminalreporter.section(
            f"system test ({arch.name}, {arch.memory_mb} MB): memory in MB (agent RSS/PSS/USS; "
            "its unit's MemoryCurrent, MemoryMax and what Max leaves; the system's)")
        for line in Findings(outcome.logs).memory_table().splitlines():
            terminalreporter.write_line(line)
