"""pytest fixtures for tests that need a Live API server.

Load with ``pytest_plugins = ["agent.emulator.pytest_plugin"]`` in a ``conftest.py``. Override
``emulator_config`` in a test module or conftest to change the emulator's settings::

    @pytest.fixture
    def emulator_config() -> EmulatorConfig:
        return EmulatorConfig(time_scale=0.05, scenario=Scenario.load("lamp.toml"))
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator

DEVELOPER_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
FIREBASE_PATH = "/ws/google.firebase.vertexai.v1beta.GenerativeService/BidiGenerateContent"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """The config of the ``emulator`` fixture: a free 127.0.0.1 port, 20x faster clock."""
    return EmulatorConfig(port=0, time_scale=0.05)


@pytest_asyncio.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    """A running in-process emulator; ``emulator.url`` is its base URL."""
    async with Emulator(emulator_config) as running:
        yield running
