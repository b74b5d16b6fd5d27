"""A scripted Live server on 127.0.0.1 for client tests that need exact control of each frame.

Each accepted connection is handed to the test, which reads the client's frames and sends the
server's, byte for byte. Behavioural tests of a whole conversation run against the emulator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.session import LiveSession

STEP_TIMEOUT = 5.0


@dataclass
class ScriptedConnection:
    ws: ServerConnection
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def path(self) -> str:
        return self.ws.request.path if self.ws.request else ""

    @property
    def headers(self) -> Any:
        return self.ws.request.headers if self.ws.request else {}

    async def expect(self) -> dict[str, Any]:
        """The client's next frame, parsed; fails the test if none comes in time."""
        async with asyncio.timeout(STEP_TIMEOUT):
            raw = await self.ws.recv()
        assert isinstance(raw, str), "the client sends text frames, as Google's clients do"
        obj = json.loads(raw)
        assert isinstance(obj, dict)
        return obj

    async def send(self, obj: Any, *, binary: bool = True) -> None:
        data = json.dumps(obj)
        await self.ws.send(data.encode() if binary else data)

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def handshake(self, **setup_complete: Any) -> dict[str, Any]:
        setup = await self.expect()
        assert "setup" in setup
        await self.send({"setupComplete": setup_complete})
        return setup["setup"]

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)
        self.done.set()

    def drop(self) -> None:
        """End the TCP connection without a close frame."""
        self.ws.transport.abort()
        self.done.set()


class ScriptedServer:
    def __init__(self) -> None:
        self.port = 0
        self._connections: asyncio.Queue[ScriptedConnection] = asyncio.Queue()

    @property
    def endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, ws: ServerConnection) -> None:
        conn = ScriptedConnection(ws)
        await self._connections.put(conn)
        closed = asyncio.ensure_future(ws.wait_closed())
        done = asyncio.ensure_future(conn.done.wait())
        await asyncio.wait({closed, done}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        done.cancel()

    async def accept(self) -> ScriptedConnection:
        async with asyncio.timeout(STEP_TIMEOUT):
            return await self._connections.get()

    def model(self, **kwargs: Any) -> LiveGenerativeModel:
        backend = GeminiDeveloperBackend(api_key="test-key", endpoint=self.endpoint)
        return LiveGenerativeModel(backend=backend, model=kwargs.pop("model", "m"), **kwargs)

    async def connect(self, **kwargs: Any) -> tuple[LiveSession, ScriptedConnection]:
        """Connect a client and complete the handshake; the setup frame is on ``conn.setup``."""
        task = asyncio.create_task(self.model(**kwargs).connect())
        conn = await self.accept()
        conn.setup = await conn.handshake()  # type: ignore[attr-defined]
        async with asyncio.timeout(STEP_TIMEOUT):
            session = await task
        return session, conn


@pytest.fixture
async def live_server() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    async with serve(server._handler, "127.0.0.1", 0, compression=None) as ws_server:
        server.port = ws_server.sockets[0].getsockname()[1]
        yield server


# The emulator's fixtures (``emulator``, ``emulator_config``), for the tests that need a whole
# Live service rather than a scripted peer.
from agent.emulator.pytest_plugin import emulator, emulator_config  # noqa: E402, F401
