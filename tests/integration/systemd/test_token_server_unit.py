"""The token server's unit, checked by systemd's own tools: no output from verify, and a low
exposure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "systemd" / "edge-agent-token-server.service"
EXEC_START = "/opt/edge-agent-token/bin/edge-agent"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed (apt install systemd)")


def verifiable_copy(folder: Path) -> Path:
    binary = folder / "edge-agent"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    copy = folder / UNIT.name
    copy.write_text(UNIT.read_text().replace(f"ExecStart={EXEC_START} ", f"ExecStart={binary} "))
    return copy


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_it_runs_the_token_server_command() -> None:
    assert (f"ExecStart={EXEC_START} token-server --config "
            "/etc/edge-agent-token/token-server.toml") in UNIT.read_text()


def test_verify_passes_without_any_output(tmp_path: Path) -> None:
    result = run("systemd-analyze", "verify", verifiable_copy(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_security_exposure_is_low(tmp_path: Path) -> None:
    result = run("systemd-analyze", "security", "--offline=yes", "--threshold=30",
                 verifiable_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= 1.5
