"""The tight loop against the cookbook-style agent and its libraries alone, side by side; see
tight_loop.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_tight_loop_against_the_cookbook_agent() -> None:
    script = Path(__file__).with_name("tight_loop.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The tight loop" in result.stdout
