"""Fixtures for the emulator's integration tests: the emulator itself and a plain client.

The client is raw `websockets` code on purpose: these tests pin the wire behaviour, not the
project's Live client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from agent.emulator import Emulator, EmulatorConfig
from agent.emulator.pytest_plugin import (  # noqa: F401  (fixtures)
    DEVELOPER_PATH,
    emulator,
    emulator_config,
)
from tests.support.emulator_client import STEP, LiveClient

Opener = Callable[..., Any]


@pytest_asyncio.fixture
async def open_client() -> AsyncIterator[Opener]:
    """``await open_client(emu, setup=..., path=..., key=..., headers=...)`` -> LiveClient.

    With ``setup`` given (a setup message), waits for setupComplete. Closes all at the end.
    """
    opened: list[ClientConnection] = []

    async def opener(
        emu: Emulator,
        setup: dict[str, Any] | None = None,
        *,
        path: str = DEVELOPER_PATH,
        key: str | None = "test-key",
        headers: dict[str, str] | None = None,
        **connect_args: Any,
    ) -> LiveClient:
        url = emu.url + path + (f"?key={key}" if key is not None else "")
        async with asyncio.timeout(STEP):
            ws = await connect(url, additional_headers=headers, **connect_args)
        opened.append(ws)
        client = LiveClient(ws)
        if setup is not None:
            await client.send(setup)
            first = await client.recv()
            assert "setupComplete" in first, first
            client.setup_complete = first
        return client

    yield opener
    for ws in opened:
        await ws.close()


@pytest.fixture
def fast() -> Callable[..., EmulatorConfig]:
    """``fast(**overrides)``: a config with a 20x clock."""

    def make(**overrides: Any) -> EmulatorConfig:
        return EmulatorConfig(**{"time_scale": 0.05, **overrides})

    return make
