"""Notice a dead link while data is being sent, in seconds rather than at the next keepalive.

A network that blackholes (Wi-Fi gone, no RST) leaves a WebSocket looking open: sends are
buffered by the kernel, nothing arrives, and websockets' keepalive ping (every 20 s, 20 s to
answer) notices 20-40 s later. While audio streams there is always data in flight, so the
probe keeps one ping in flight every ``interval_s`` and declares the link dead when a ping
goes unanswered for ``dead_after_s``: a round trip that long is no conversation anyway. An
idle connection sends no probes; the keepalive covers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(__name__)


class LinkProbe:
    """Pings while ``note_sent()`` is being called; ``on_dead(unanswered_s)`` when a ping
    is not answered in time (called once; the probe stops)."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        interval_s: float,
        dead_after_s: float,
        on_dead: Callable[[float], None],
    ) -> None:
        self._ws = ws
        self.interval_s = interval_s
        self.dead_after_s = dead_after_s
        self._on_dead = on_dead
        self._sent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.round_trip_s: float | None = None

    def note_sent(self) -> None:
        """Data is going out: make sure a probe follows it."""
        self._sent.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="link-probe")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._sent.wait()
            self._sent.clear()
            started = loop.time()
            try:
                # The deadline covers sending the ping too: on a dead link the kernel's buffer
                # fills and even the ping cannot leave.
                async with asyncio.timeout(self.dead_after_s):
                    pong = await self._ws.ping()
                    self.round_trip_s = await pong
            except TimeoutError:
                self._on_dead(loop.time() - started)
                return
            except ConnectionClosed:
                return
            await asyncio.sleep(max(0.0, started + self.interval_s - loop.time()))
