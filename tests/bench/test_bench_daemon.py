"""The daemon's steady-state cost (CPU, RSS, time to READY); see daemon_steady_state.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_daemon_steady_state() -> None:
    script = Path(__file__).with_name("daemon_steady_state.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "start to READY=1" in result.stdout
