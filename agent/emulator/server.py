"""The emulator: a Live API server on 127.0.0.1, usable in-process or from the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State

from agent.emulator.auth import Authority
from agent.emulator.config import EmulatorConfig
from agent.emulator.connection import LiveConnection
from agent.emulator.faults import HANDSHAKE_KINDS, Fault, FaultKind
from agent.emulator.recording import EmulatorStats, Recordings
from agent.emulator.rest import RestServer
from agent.emulator.routes import Route, extract_credentials, match_route
from agent.emulator.sessions import SessionStore
from agent.emulator.tls import make_certificate, server_context

log = structlog.get_logger(__name__)


MAX_QUEUED_FAULTS = 1024  # faults injected for connections that have not opened yet


@dataclass(slots=True)
class _Pending:
    """A connection whose upgrade was accepted and whose handler has not started."""

    number: int
    route: Route
    faults: list[Fault]


class Emulator:
    """A running emulator. ``async with Emulator(config) as emu:`` then connect to ``emu.url``.

    Faults: :meth:`inject`. What clients sent: :attr:`recordings`. Counters: :attr:`stats`.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        limits = self.config.limits
        self.recordings = Recordings(limits.record_max_bytes, limits.record_max_connections)
        self.stats = EmulatorStats()
        self.sessions = SessionStore(
            self.config.scaled(self.config.handle_ttl_s),
            max_sessions=limits.max_sessions,
            max_handles_per_session=limits.max_handles_per_session,
        )
        self.auth = Authority(
            self.config.api_key,
            check_tokens=self.config.check_tokens,
            require_app_check=self.config.require_app_check,
            require_firebase_auth=self.config.require_firebase_auth,
        )
        self.rest: RestServer | None = None
        self.cert_path: Path | None = None
        self._server: Server | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._queued: list[tuple[int | None, Fault]] = []
        self._pending: dict[ServerConnection, _Pending] = {}
        self._live: dict[int, LiveConnection] = {}
        scenario = self.config.scenario
        if scenario is not None:
            self._queued.extend(scenario.faults)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving."""
        ssl_context = None
        if self.config.tls:
            directory = self.config.cert_dir
            if directory is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="edge-agent-emulator-")
                directory = Path(self._tempdir.name)
            pair = make_certificate(directory, self.config.host)
            self.cert_path = pair.cert_path
            ssl_context = server_context(pair)
        self._server = await serve(
            self._handler,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            # permessage-deflate is negotiated only when the client offers it (google-genai does)
            compression="deflate",
            max_size=self.config.max_message_bytes,
            max_queue=self.config.limits.max_queued_frames,
            ping_interval=None,
            ssl=ssl_context,
            server_header=None,
        )
        if self.config.rest:
            self.rest = RestServer(self.auth, self.config.token_lifetimes, self.config.host)
            await self.rest.start()
        log.info("emulator.started", url=self.url, tls=self.config.tls)

    async def close(self) -> None:
        """Close every connection (1001) and stop serving."""
        if self.rest is not None:
            await self.rest.close()
            self.rest = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        sockname: tuple[Any, ...] = next(iter(self._server.sockets)).getsockname()
        return int(sockname[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``ws://127.0.0.1:8765`` (``wss://`` with TLS)."""
        scheme = "wss" if self.config.tls else "ws"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the token endpoints (``rest = True``), e.g. ``http://127.0.0.1:8766``."""
        if self.rest is None:
            raise RuntimeError("the emulator serves no token endpoints (EmulatorConfig.rest)")
        return self.rest.url

    @property
    def connections(self) -> int:
        """Connection attempts so far (each upgrade request counts, refused ones too)."""
        return self.stats.connections

    @property
    def open_connections(self) -> list[int]:
        """Numbers of the connections open now."""
        return sorted(self._live)

    async def wait_for_close(self, number: int, within_s: float) -> None:
        """Wait up to ``within_s`` seconds for connection ``number`` to finish."""
        live = self._live.get(number)
        if live is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(live.finished.wait()), within_s)

    # --- faults ------------------------------------------------------------------------

    def inject(self, fault: Fault, connection: int | None = None) -> None:
        """Arm ``fault`` on a connection.

        ``connection=None``: the newest open connection, or the next one if none is open
        (handshake faults always go to the next one). A number: that connection (1-based,
        as counted by :attr:`connections`), now if it is open, else when it opens.
        """
        if len(self._queued) >= MAX_QUEUED_FAULTS:
            raise ValueError(f"{MAX_QUEUED_FAULTS} faults already wait for their connections")
        handshake = fault.kind in HANDSHAKE_KINDS
        if connection is None:
            if self._live and not handshake:
                self._live[max(self._live)].arm(fault)
            else:
                self._queued.append((None, fault))
            return
        if connection in self._live and not handshake:
            self._live[connection].arm(fault)
        elif connection > self.stats.connections:
            self._queued.append((connection, fault))
        else:
            raise ValueError(f"connection {connection} is not open and will not open again")

    def _take_faults(self, number: int) -> list[Fault]:
        taken = [f for target, f in self._queued if target in (None, number)]
        self._queued = [(t, f) for t, f in self._queued if t not in (None, number)]
        return taken

    # --- handshake ---------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        self.stats.connections += 1
        number = self.stats.connections
        route = match_route(request.path)
        if route is None:
            self.stats.refused_handshakes += 1
            log.info("emulator.handshake.not_found", path=request.path.split("?")[0])
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self._admitted() >= self.config.limits.max_connections:
            self.stats.refused_handshakes += 1
            log.warning("emulator.handshake.too_many", open=self._admitted())
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        faults = self._take_faults(number)
        for fault in [f for f in faults if f.kind in HANDSHAKE_KINDS]:
            faults.remove(fault)
            self.stats.faults += 1
            if fault.kind is FaultKind.HANDSHAKE_DELAY:
                log.info("emulator.fault", kind=fault.kind.value, connection=number)
                await asyncio.sleep(self.config.scaled(fault.seconds or 0.0))
            else:
                self.stats.refused_handshakes += 1
                log.info("emulator.fault", kind=fault.kind.value, status=fault.status)
                status = HTTPStatus(fault.status)
                response = connection.respond(status, f"{status.phrase}\n")
                return response
        self._pending[connection] = _Pending(number, route, faults)
        return None

    def _admitted(self) -> int:
        """Connections served now or about to be (a handshake that failed after its upgrade
        was accepted never reaches the handler: forget it here)."""
        for gone in [c for c in self._pending if c.state is State.CLOSED]:
            del self._pending[gone]
        return len(self._live) + len(self._pending)

    async def _handler(self, ws: ServerConnection) -> None:
        pending = self._pending.pop(ws)
        number = pending.number
        headers: Headers = ws.request.headers if ws.request is not None else Headers()
        target = ws.request.path if ws.request is not None else "/"
        credentials = extract_credentials(target, {k.lower(): v for k, v in headers.raw_items()})
        recording = self.recordings.open_connection(number, pending.route.path, time.monotonic())
        live = LiveConnection(
            self, ws, number, pending.route, credentials, recording, pending.faults
        )
        self._live[number] = live
        try:
            await live.run()
        finally:
            del self._live[number]
            live.finished.set()
            recording.closed_at = time.monotonic()
            recording.close_code = ws.close_code
            recording.close_reason = ws.close_reason


async def run_emulator(config: EmulatorConfig, ready: asyncio.Event | None = None) -> None:
    """Run an emulator until cancelled (the CLI's entry point); sets ``ready`` once bound."""
    async with Emulator(config) as emulator:
        log.info("emulator.listening", url=emulator.url, cert=str(emulator.cert_path or ""))
        if ready is not None:
            ready.set()
        await asyncio.Future()
