"""Fixtures of the provisioning tier; its helpers are in ansible_tier.py."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

# The tier's helper modules sit beside this file (tests run with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ansible_tier import HARDWARE_DIR, load_module


@pytest.fixture(scope="session")
def select_profile() -> ModuleType:
    """hardware/select_profile.py, the profile selector."""
    return load_module("edge_agent_select_profile", HARDWARE_DIR / "select_profile.py")

