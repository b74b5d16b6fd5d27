"""One WebSocket connection: handshake, the per-frame path, lifetime, and faults.

A frame the service would refuse closes the connection with the service's code and reason; a
bug of the emulator's own closes it with 1011 and one ``emulator.internal_error`` line. A client
that reads nothing for ``send_timeout_s`` is dropped, so it cannot hold a slot forever.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any, Protocol

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from agent.emulator import wire
from agent.emulator.auth import EPHEMERAL_EXPIRED, Authority
from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import TOOL_KINDS, Fault, FaultKind, Trigger
from agent.emulator.model import LOG_TEXT_CHARS, FakeModel
from agent.emulator.recording import (
    AudioChunk,
    ConnectionRecording,
    EmulatorStats,
    Received,
    Recordings,
    Sent,
    VideoFrame,
)
from agent.emulator.routes import Backend, Credentials, Route
from agent.emulator.sessions import ServerSession, SessionStore


class Host(Protocol):
    """What a connection uses of the emulator that accepted it."""

    config: EmulatorConfig
    stats: EmulatorStats
    sessions: SessionStore
    recordings: Recordings
    auth: Authority

    async def wait_for_close(self, number: int, within_s: float) -> None: ...

log = structlog.get_logger(__name__)

SLICE_S = 0.005  # a connection handling buffered frames lets the others in after this long


class LiveConnection:
    """Serves one client connection for the :class:`Emulator` that accepted it."""

    def __init__(
        self,
        emulator: Host,
        ws: ServerConnection,
        number: int,
        route: Route,
        credentials: Credentials,
        recording: ConnectionRecording,
        faults: list[Fault],
    ) -> None:
        self.emulator, self.ws, self.number = emulator, ws, number
        self.config = emulator.config
        self.route, self.credentials, self.recording = route, credentials, recording
        self.armed: list[Fault] = list(faults)
        self.session: ServerSession | None = None
        self.model: FakeModel | None = None
        self.ready = False  # setupComplete sent
        self.wants_handles = False
        self.transparent = False
        self.ending = False  # the session is over and a close is on its way
        self.dropped = False  # aborted: the client stopped reading
        self.consumed = -1  # index of the last client message consumed (after setup)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = asyncio.Event()
        self._running.set()
        self.finished = asyncio.Event()
        self.log = log.bind(connection=number, backend=route.backend.value)

    # --- sending -----------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Send one server message (binary frame unless configured otherwise); record it.

        A client that has not read for ``send_timeout_s`` is dropped (ConnectionClosed)."""
        frame = wire.encode(message)
        try:
            async with asyncio.timeout(self.config.limits.send_timeout_s):
                await self.ws.send(frame if self.config.binary_frames else frame.decode("utf-8"))
        except TimeoutError:
            self._drop_slow_client()
            raise ConnectionClosedError(None, None) from None
        if self.config.record and self.emulator.recordings.keep(self.recording, len(frame)):
            self.recording.sent.append(Sent(time.monotonic(), message))

    def _drop_slow_client(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.emulator.stats.dropped_slow_clients += 1
            self.log.info("emulator.client_not_reading", after_s=self.config.limits.send_timeout_s)
        self.ws.transport.abort()

    async def close(self, close: tuple[int, str]) -> None:
        """Close with the service's code and reason."""
        code, reason = close
        self.log.info("emulator.close", code=code, reason=reason)
        await self.ws.close(code, fit_reason(reason))

    # --- main --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the connection ends."""
        try:
            await self._handshake()
            await self._serve()
        except wire.ProtocolViolation as exc:
            self.emulator.stats.violations += 1
            self.log.info("emulator.violation", code=exc.code, detail=exc.detail)
            await self.close((exc.code, exc.reason))
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug of ours: the client gets the service's 1011
            self.emulator.stats.internal_errors += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.log.error("emulator.internal_error", error=repr(exc)[:200],
                           at=f"{where.filename}:{where.lineno}")  # fmt: skip
            await self.close(wire.INTERNAL)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.model is not None:
                await self.model.stop()
            if self.session is not None and self.session.open_connection == self.number:
                self.session.open_connection = None
                self.session.last_closed_at = time.monotonic()

    async def _handshake(self) -> None:
        try:
            async with asyncio.timeout(self.config.scaled(self.config.setup_timeout_s)):
                frame = await self.ws.recv()
            t = time.monotonic()
        except TimeoutError:
            raise wire.ProtocolViolation(wire.DEADLINE_EXPIRED, "no setup message") from None
        message = wire.load_json(frame)
        kind, _ = wire.message_kind(message)
        self._record(kind, message, t, len(frame))
        if kind != "setup":
            raise wire.invalid(f"first message must be setup, got {kind}")
        if not self.credentials.present:
            raise wire.ProtocolViolation(wire.NO_CREDENTIALS, "credentials refused")
        setup = wire.parse_client_message(message, developer_api=self.route.developer_api)
        assert isinstance(setup, wire.Setup)
        model_id = wire.model_id(setup.model)
        if model_id is None:
            raise wire.invalid(f"malformed model name {wire.brief(setup.model)}")
        refused = self.emulator.auth.check(self.credentials, model_id)
        if refused is not None:
            raise wire.ProtocolViolation(refused, "credentials refused")
        if self.config.models is not None and model_id not in self.config.models:
            raise wire.ProtocolViolation(
                (
                    1008,
                    f"models/{model_id} is not found for API version {self.route.version}, or is "
                    "not supported for bidiGenerateContent. Call ListModels to see the list of "
                    "available models and their supported methods.",
                ),
                "unknown model",
            )
        self.session = await self._open_session(setup, model_id)
        self.wants_handles = setup.resumption is not None
        self.transparent = bool(setup.resumption and setup.resumption.transparent)
        self.model = FakeModel(
            setup,
            self.config,
            self.session.state,
            self,
            stats=self.emulator.stats,
            vertex=self.route.backend in (Backend.VERTEX, Backend.FIREBASE_VERTEX),
            resumable=self.wants_handles,
        )
        session_id = self.session.id if self.config.send_session_id else None
        await self.send(wire.setup_complete(session_id))
        self.ready = True
        update = self.handle_update()
        if update is not None:
            await self.send(update)
        self._start(self._lifetime(), "lifetime")
        ends_at = self.emulator.auth.session_end(self.credentials)
        if ends_at is not None:
            self._start(self._token_expiry(ends_at), "token-expiry")
        await self.fire(Trigger.NOW)

    async def _open_session(self, setup: wire.Setup, model_id: str) -> ServerSession:
        store, stats = self.emulator.sessions, self.emulator.stats
        handle = setup.resumption.handle if setup.resumption else None
        if handle is None:
            session = store.create(model_id, time.monotonic())
            stats.sessions += 1
            resumed = False
        else:
            session = store.resume(handle, model_id, time.monotonic())
            if session.open_connection is not None:
                await self.emulator.wait_for_close(
                    session.open_connection, self.config.concurrent_resume_grace_s
                )
            if session.open_connection is not None:
                # resuming while the old socket is open fails in production (§6)
                raise wire.ProtocolViolation(wire.INTERNAL, "session still open elsewhere")
            stats.resumed += 1
            resumed = True
        session.open_connection = self.number
        session.connections += 1
        self.emulator.recordings.attach(self.recording, session.id, resumed=resumed)
        self.log = self.log.bind(session=session.id)
        self.log.info("emulator.session", resumed=resumed, model=model_id[:LOG_TEXT_CHARS])
        return session

    async def _serve(self) -> None:
        model = self.model
        assert model is not None
        stats = self.emulator.stats
        developer_api = self.route.developer_api
        record = self.config.record
        recordings, rec = self.emulator.recordings, self.recording
        slice_start = time.perf_counter()
        while True:
            if await model.wait_for_space():  # backpressure: its turns wait, so does the client
                stats.backpressure_waits += 1
            frame = await self.ws.recv()
            if not self._running.is_set():  # stalled: hold the frame until the stall ends
                await self._running.wait()
            t = time.monotonic()
            started = time.perf_counter()
            message = wire.load_json(frame)
            parsed = wire.parse_client_message(message, developer_api=developer_api)
            kind = _kind_of(parsed)
            self.consumed += 1
            stats.messages += 1
            self._record(kind, message, t, len(frame))
            model.admit(parsed)
            if record:
                if isinstance(parsed, wire.Audio):
                    if recordings.keep(rec, parsed.samples.nbytes):
                        rec.audio.append(AudioChunk(t, parsed.rate, parsed.samples))
                elif isinstance(parsed, wire.Video) and recordings.keep(rec, len(parsed.data)):
                    rec.video.append(VideoFrame(t, parsed.mime_type, parsed.data))
            if isinstance(parsed, wire.Audio):
                # the per-frame path ends here; what speech detection found is acted on after
                events = model.feed_audio(parsed)
                stats.audio_frames += 1
                if record:
                    stats.frame_times.append(time.perf_counter() - started)
                if events:
                    await model.on_speech_events(events)
            else:
                if isinstance(parsed, wire.Setup):
                    raise wire.invalid("setup sent twice")
                if isinstance(parsed, wire.Video):
                    stats.video_frames += 1
                await model.handle(parsed)
            # frames already buffered are handled without a pause: after a slice of the loop's
            # time, let the other connections have it
            if time.perf_counter() - slice_start > SLICE_S:
                await asyncio.sleep(0)
                slice_start = time.perf_counter()

    def _record(self, kind: str, message: dict[str, Any], t: float, size: int) -> None:
        rec = self.recording
        index, rec.messages = rec.messages, rec.messages + 1
        if self.config.record and self.emulator.recordings.keep(rec, size):
            rec.received.append(Received(index, t, kind, message))

    # --- lifetime ----------------------------------------------------------------------

    async def _token_expiry(self, ends_at: float) -> None:
        """A session on an ephemeral token ends at the token's ``expire_time``."""
        await asyncio.sleep(max(ends_at - time.time(), 0.0))
        self.ending = True
        await self.close(EPHEMERAL_EXPIRED)

    async def _lifetime(self) -> None:
        life = self.config.connection_lifetime_s
        if life is None:
            return
        before = min(self.config.go_away_before_s, life)
        await asyncio.sleep(self.config.scaled(life - before))
        await self._go_away(before)

    async def _go_away(self, seconds: float) -> None:
        left = self.config.scaled(seconds)
        await self.send(wire.go_away(left))
        self.log.info("emulator.go_away", time_left_s=left)
        await asyncio.sleep(left)
        await self.close(wire.DEADLINE_EXPIRED)

    # --- model host --------------------------------------------------------------------

    def handle_update(self) -> dict[str, Any] | None:
        """A sessionResumptionUpdate with a new handle, when the client asked for them."""
        if not self.wants_handles or self.session is None:
            return None
        handle = self.emulator.sessions.issue_handle(self.session, time.monotonic())
        last = self.consumed if self.transparent and self.consumed >= 0 else None
        return wire.resumption_update(handle, last_consumed=last)

    def end_session(self, close: tuple[int, str]) -> None:
        """The context window is full: the session cannot go on or be resumed."""
        if self.session is not None:
            self.session.ended = True
        if not self.ending:  # every later frame would find the window full too
            self.ending = True
            self._start(self.close(close), "end-session")

    def arm(self, fault: Fault) -> None:
        """Arm a fault; ``now`` faults fire at once once the connection is set up. Past
        ``max_armed_faults`` not yet fired, the oldest is forgotten."""
        if len(self.armed) >= self.config.limits.max_armed_faults:
            forgotten = self.armed.pop(0)
            self.log.warning("emulator.fault_forgotten", kind=forgotten.kind.value)
        self.armed.append(fault)
        if fault.at is Trigger.NOW and self.ready:
            self._start(self.fire(Trigger.NOW), "fault")

    def take_tool_faults(self) -> list[Fault]:
        """Armed repeat/cancel faults for the next tool call."""
        taken = [f for f in self.armed if f.kind in TOOL_KINDS]
        self.armed = [f for f in self.armed if f.kind not in TOOL_KINDS]
        return taken

    async def fire(self, trigger: Trigger) -> None:
        """Execute the armed faults for ``trigger``."""
        due = [f for f in self.armed if f.at is trigger and f.kind not in TOOL_KINDS]
        if not due:
            return
        self.armed = [f for f in self.armed if f not in due]
        for fault in due:
            await self._execute(fault)

    async def _execute(self, fault: Fault) -> None:
        self.emulator.stats.faults += 1
        self.log.info("emulator.fault", kind=fault.kind.value, at=fault.at.value)
        kind = fault.kind
        if kind is FaultKind.DROP:
            self.ws.transport.abort()
        elif kind is FaultKind.CLOSE:
            self._start(self.ws.close(fault.code, fit_reason(fault.reason)), "close")
        elif kind is FaultKind.STALL:
            self._stall(fault.seconds)
        elif kind is FaultKind.MALFORMED_JSON:
            await self.ws.send(b'{"serverContent": {"modelTurn": {"parts": [')
        elif kind is FaultKind.UNKNOWN_MESSAGE:
            await self.send({"somethingNew": {"detail": "a message kind clients do not know"}})
        elif kind is FaultKind.OVERSIZED_FRAME:
            pcm = bytes(max(0, fault.size * 3 // 4))
            await self.send(wire.model_turn(wire.audio_part(pcm)))
        elif kind is FaultKind.GO_AWAY:
            self._start(
                self._go_away(fault.seconds if fault.seconds is not None else 1.0), "go-away"
            )

    def _stall(self, seconds: float | None) -> None:
        """Stop reading: no frames processed, TCP window fills, pings go unanswered."""
        self._running.clear()
        self.ws.transport.pause_reading()
        if seconds is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(self.config.scaled(seconds), self._unstall)

    def _unstall(self) -> None:
        if not self.ws.transport.is_closing():
            self.ws.transport.resume_reading()
        self._running.set()

    def _start(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"emulator-{name}-{self.number}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ConnectionClosed):
                self.log.error("emulator.task_failed", task=task.get_name(), error=repr(exc))


def fit_reason(reason: str, limit: int = 123) -> str:
    """A close reason cut to the 123 UTF-8 bytes a close frame can carry (RFC 6455 §5.5)."""
    data = reason.encode("utf-8")
    if len(data) <= limit:
        return reason
    return data[:limit].decode("utf-8", errors="ignore")


_KINDS: dict[type, str] = {
    wire.Setup: "setup",
    wire.ClientContent: "clientContent",
    wire.Audio: "realtimeInput.audio",
    wire.Video: "realtimeInput.video",
    wire.RealtimeText: "realtimeInput.text",
    wire.ActivityStart: "realtimeInput.activityStart",
    wire.ActivityEnd: "realtimeInput.activityEnd",
    wire.AudioStreamEnd: "realtimeInput.audioStreamEnd",
    wire.ToolResponse: "toolResponse",
    wire.ContextUpdate: "contextUpdate",
}


def _kind_of(message: wire.ClientMessage) -> str:
    return _KINDS[type(message)]
