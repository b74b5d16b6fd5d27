"""A Live session that survives faults: resumption, goAway handover, bounded replay.

``ResilientSession`` has ``LiveSession``'s API. Behind it, connections come and go: the service
ends each one after about ten minutes (``goAway`` first), Wi-Fi drops, the service answers 1011
under load. The rest of the agent keeps calling ``send_*`` and iterating ``receive()`` and
never sees a drop.

- It always asks for session resumption and keeps the newest resumable handle; sliding-window
  context compression is on unless the model already configures it.
- On ``goAway`` it waits for a moment when the session can be resumed (the last handle is
  resumable and no function call is outstanding), or until shortly before the deadline, then
  closes the old connection (reading what it still delivers) and resumes on a new one. The old
  one is closed first because the service refuses a resumption while the previous connection of
  the session is still open. Realtime input sent meanwhile is replayed, so nothing is lost.
- Failures are classified (``agent.live.recovery``): transient ones are retried with exponential
  backoff and full jitter, quota errors wait long, fatal ones stop with a clear error. Only a
  connection that stayed up ``stable_after_s`` resets the backoff (a goAway handover included),
  and an attempt limit bounds how often any server behaviour can make the session connect.
- Nothing on the connect path stops the session silently: an unexpected error is logged and
  ends the session as failed (``failure``), so ``wait_live()`` raises and ``close()`` returns.
- Realtime input sent while disconnected goes into a bounded replay buffer (default 5 s of audio,
  the newest video frame only) and is sent in order once a connection is up. Turns and function
  responses are never dropped: those calls wait until they are delivered.
- A function call id is handed to the agent at most once, even if the service sends it again
  after a resumption (``agent.live.calls``).
- A fresh connection (none to resume, or resumption refused) is first given ``seed()``'s
  turns, so a conversation whose handle was lost keeps what was said; ``on_handle`` is told
  each new handle, to keep it. By default (``seed_mode = "initial_history"``) the setup says
  so (``historyConfig.initialHistoryInClientContent``) and the turns go in one
  ``clientContent`` with ``turnComplete: true`` before any realtime input: models such as
  gemini-3.1-flash-live refuse ``clientContent`` (1007) otherwise. ``"context"`` sends them
  with ``turnComplete: false`` and no ``historyConfig``, for a service that does not know it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Literal

import structlog

from agent.live.bad_input import BadInput
from agent.live.calls import CallLedger
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.histogram import GAP_BOUNDS_S, Histogram
from agent.live.model import LiveGenerativeModel
from agent.live.recovery import AttemptLimiter, Backoff, FailureKind, classify
from agent.live.session import LiveSession
from agent.live.types import (
    Content,
    ContextWindowCompression,
    FunctionResponse,
    GenerativeContentBlob,
    LiveServerContent,
    LiveServerGoingAwayNotice,
    LiveServerMessage,
    LiveServerToolCall,
    LiveServerToolCallCancellation,
    LiveSessionResumptionUpdate,
    Part,
    SessionResumptionConfig,
)

log = structlog.get_logger(__name__)


class SessionState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RESUMING = "resuming"
    BACKING_OFF = "backing-off"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try. Times are in seconds."""

    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    quota_backoff_s: float = 60.0
    stable_after_s: float = 10.0
    """A connection live this long resets the backoff; shorter ones keep climbing."""
    replay_audio_s: float = 5.0
    audio_bytes_per_s: int = 32_000
    handover_margin_s: float = 2.0
    """On goAway, hand over at the latest this long before the deadline."""
    max_refused_in_a_row: int = 5
    """Mid-session 1007/1008 closes tolerated in a row before giving up."""
    attempts_per_minute: float = 30.0
    attempt_burst: int = 20
    """Connection attempts: at most ``attempt_burst`` at once, then ``attempts_per_minute``;
    any 60 s hold at most their sum, whatever the server does."""
    compression: ContextWindowCompression | None = field(default_factory=ContextWindowCompression)
    """Applied when the model does not set its own; ``None`` leaves sessions uncompressed."""


@dataclass
class SessionStats:
    """Counters and state for logs, ``systemctl status`` and status LEDs."""

    state: SessionState = SessionState.CONNECTING
    state_since: float = field(default_factory=time.time)
    connections: int = 0
    resumptions: int = 0
    fresh_starts: int = 0
    go_aways: int = 0
    failures: int = 0
    replayed_chunks: int = 0
    dropped_chunks: int = 0
    duplicate_tool_calls: int = 0
    stale_tool_responses: int = 0
    attempts_limited: int = 0
    bad_input: dict[str, int] = field(default_factory=dict)
    """Bad server input dropped, by kind (``agent.live.protocol.PROBLEM_KINDS``, ``unknown``,
    ``not_json``)."""
    last_error: str | None = None
    next_attempt_in_s: float | None = None
    reconnect_gaps: Histogram = field(default_factory=lambda: Histogram(GAP_BOUNDS_S))
    """Seconds from losing a live connection to the next one being live."""
    lost_at: float | None = field(default=None, repr=False)

    def status_line(self) -> str:
        """One line for sd_notify STATUS."""
        text = (
            f"{self.state}; connections {self.connections}, resumed {self.resumptions}, "
            f"fresh {self.fresh_starts}, replayed {self.replayed_chunks}, "
            f"dropped {self.dropped_chunks}"
        )
        if self.state in (SessionState.BACKING_OFF, SessionState.FAILED) and self.last_error:
            text += f"; last error: {self.last_error}"
        return text


SeedMode = Literal["initial_history", "context"]

RealtimeKind = Literal["audio", "text", "activity_start", "activity_end", "audio_stream_end"]


class ReplayBuffer:
    """Realtime input held while disconnected, in order. Audio beyond ``max_audio_bytes`` is
    dropped oldest first and counted; markers and text are never dropped."""

    def __init__(self, max_audio_bytes: int) -> None:
        self.max_audio_bytes = max_audio_bytes
        self._items: deque[tuple[RealtimeKind, GenerativeContentBlob | str | None]] = deque()
        self._audio_bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, kind: RealtimeKind, payload: GenerativeContentBlob | str | None) -> None:
        self._items.append((kind, payload))
        if isinstance(payload, GenerativeContentBlob) and kind == "audio":
            self._audio_bytes += _blob_size(payload)
            while self._audio_bytes > self.max_audio_bytes:
                self._drop_oldest_audio()

    def _drop_oldest_audio(self) -> None:
        for index, (kind, payload) in enumerate(self._items):
            if kind == "audio" and isinstance(payload, GenerativeContentBlob):
                del self._items[index]
                self._audio_bytes -= _blob_size(payload)
                self.dropped += 1
                return

    def popleft(self) -> tuple[RealtimeKind, GenerativeContentBlob | str | None]:
        kind, payload = self._items.popleft()
        if kind == "audio" and isinstance(payload, GenerativeContentBlob):
            self._audio_bytes -= _blob_size(payload)
        return kind, payload

    def appendleft(self, kind: RealtimeKind, payload: GenerativeContentBlob | str | None) -> None:
        self._items.appendleft((kind, payload))
        if kind == "audio" and isinstance(payload, GenerativeContentBlob):
            self._audio_bytes += _blob_size(payload)


def _blob_size(blob: GenerativeContentBlob) -> int:
    data = blob.data
    return len(data) if isinstance(data, bytes) else len(data) * 3 // 4


_END = object()


class ResilientSession:
    """A Live session that outlives its connections. Use as an async context manager, or call
    ``start()`` and ``close()``."""

    def __init__(
        self,
        model: LiveGenerativeModel,
        policy: ReconnectPolicy | None = None,
        *,
        rng: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        inbox_size: int = 256,
    ) -> None:
        self.policy = policy or ReconnectPolicy()
        self._model = _with_compression(model, self.policy.compression)
        self._sleep = sleep
        backoff_args = {"rng": rng} if rng is not None else {}
        self._backoff = Backoff(
            self.policy.backoff_base_s,
            self.policy.backoff_cap_s,
            self.policy.quota_backoff_s,
            **backoff_args,
        )
        self._limiter = AttemptLimiter(self.policy.attempts_per_minute, self.policy.attempt_burst)
        self._slept_until = 0.0
        self._bad_input = BadInput()
        self.stats = SessionStats(bad_input=self._bad_input.counts)
        self.handle: str | None = None
        self.seed: Callable[[], Sequence[Content]] | None = None
        """The turns a fresh connection starts from (a transcript of what was said)."""
        self.seed_mode: SeedMode = "initial_history"
        """How the seed is sent: as declared initial history, or as plain context."""
        self.on_handle: Callable[[str | None], None] | None = None
        """Told each new resumable handle, and None when a refused one is dropped."""
        self.in_conversation = False
        self._resumable = False
        self._session: LiveSession | None = None
        self._live = asyncio.Event()
        self._changed = asyncio.Event()
        self._closed = False
        self._fatal: LiveSessionError | None = None
        self._inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=inbox_size)
        self._receiving = False
        self._replay = ReplayBuffer(int(self.policy.replay_audio_s * self.policy.audio_bytes_per_s))
        self._pending_video: GenerativeContentBlob | None = None
        self._calls = CallLedger()
        self._connection = 0
        self._handover_timer: asyncio.TimerHandle | None = None
        self._handover_requested = False
        self._listeners: list[Callable[[SessionStats], None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._resending: asyncio.Future[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> ResilientSession:
        """Start connecting in the background; returns at once."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._run(), name="live-supervisor")
        return self

    async def __aenter__(self) -> ResilientSession:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the current connection with 1000 and stop reconnecting. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._live.clear()
        self._changed.set()
        self._cancel_handover_timer()
        session = self._session
        if session is not None:
            await session.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._set_state(SessionState.CLOSED)
        self._end_inbox()

    @property
    def is_closed(self) -> bool:
        return self._closed or self._fatal is not None

    @property
    def state(self) -> SessionState:
        return self.stats.state

    @property
    def failure(self) -> LiveSessionError | None:
        """The fatal error that stopped the session, if one did."""
        return self._fatal

    def add_listener(self, listener: Callable[[SessionStats], None]) -> None:
        """Call ``listener(stats)`` on every state change."""
        self._listeners.append(listener)

    async def wait_live(self) -> None:
        """Wait until a connection is live; raises the fatal error if the session failed."""
        await self._wait_live()

    # -- sending ----------------------------------------------------------------------------------

    async def send_audio_realtime(self, blob: GenerativeContentBlob) -> None:
        """Send audio now, or hold it for replay (bounded, oldest dropped) while disconnected."""
        await self._send_realtime("audio", blob)

    async def send_text_realtime(self, text: str) -> None:
        await self._send_realtime("text", text)

    async def send_activity_start(self) -> None:
        await self._send_realtime("activity_start", None)

    async def send_activity_end(self) -> None:
        await self._send_realtime("activity_end", None)

    async def send_audio_stream_end(self) -> None:
        await self._send_realtime("audio_stream_end", None)

    async def send_video_realtime(self, blob: GenerativeContentBlob) -> None:
        """Send a frame now; while disconnected only the newest frame is kept."""
        self._check_open()
        session = self._live_session()
        if session is not None:
            try:
                await session.send_video_realtime(blob)
                return
            except LiveSessionError:
                if not session.is_closed:
                    raise
        if self._pending_video is not None:
            self.stats.dropped_chunks += 1
        self._pending_video = blob

    async def send(self, request: str | Sequence[str | Part], turn_complete: bool = True) -> None:
        """Send a turn. Waits until a connection is live; never dropped."""
        await self._send_reliable(lambda s: s.send(request, turn_complete))

    async def send_function_responses(self, function_responses: Sequence[FunctionResponse]) -> None:
        """Send function responses once, on the first live connection whose session knows the
        calls. A response to a call that a resumed session does not know (it was made on a
        connection that dropped before the call could be saved) is not sent: the service would
        refuse it. It is kept, and sent if the service asks for the call again."""

        async def deliver(session: LiveSession) -> None:
            connection = self._connection
            send, stale = self._calls.deliverable(function_responses, connection)
            if stale:
                self.stats.stale_tool_responses += len(stale)
                log.warning("tool.response_stale", ids=[r.id for r in stale])
            if send:
                await session.send_function_responses(send)
                self._calls.mark_sent(send, connection)

        await self._send_reliable(deliver)
        self._maybe_hand_over()

    async def _send_realtime(
        self, kind: RealtimeKind, payload: GenerativeContentBlob | str | None
    ) -> None:
        self._check_open()
        session = self._live_session()
        if session is not None:
            try:
                await _send_one(session, kind, payload)
                return
            except LiveSessionError:
                if not session.is_closed:
                    raise  # bad input, not a dead connection
        self._replay.append(kind, payload)
        self.stats.dropped_chunks = self._replay.dropped

    async def _send_reliable(self, op: Callable[[LiveSession], Awaitable[None]]) -> None:
        while True:
            self._check_open()
            await self._wait_live()
            session = self._live_session()
            if session is None:
                continue
            try:
                await op(session)
                return
            except LiveSessionError:
                if not session.is_closed:
                    raise

    def _live_session(self) -> LiveSession | None:
        return self._session if self._live.is_set() else None

    def _check_open(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise LiveSessionError(
                LiveErrorCode.REQUEST_ERROR, "This LiveSession has been closed and cannot be used."
            )

    async def _wait_live(self) -> None:
        while not self._live.is_set():
            self._check_open()
            self._changed.clear()
            waiters = {
                asyncio.ensure_future(self._live.wait()),
                asyncio.ensure_future(self._changed.wait()),
            }
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self._check_open()

    # -- receiving --------------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[LiveServerMessage]:
        """Messages from every connection in turn. ``goAway`` and resumption updates are handled
        here and not yielded; a function call id is yielded once. Ends when the session is
        closed; raises the fatal error if it failed."""
        if self._receiving:
            raise LiveSessionError(
                LiveErrorCode.REQUEST_ERROR, "receive() can only be used by one consumer at a time."
            )
        while True:
            self._receiving = True
            try:
                item = await self._inbox.get()
            finally:
                self._receiving = False
            if item is _END:
                self._inbox.put_nowait(_END)  # later calls end too
                if self._fatal is not None:
                    raise self._fatal
                return
            yield item  # type: ignore[misc]

    def _end_inbox(self) -> None:
        while True:
            try:
                self._inbox.put_nowait(_END)
                return
            except asyncio.QueueFull:
                self._inbox.get_nowait()  # nobody reads: make room for the end marker

    # -- the supervisor -----------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connect_and_serve()
        except Exception as exc:  # a bug must not leave the session silently connecting
            log.exception("session.supervisor_failed")
            self._fail(
                LiveSessionError(
                    LiveErrorCode.ERROR,
                    f"The Live session stopped on an unexpected error: {type(exc).__name__}: {exc}",
                )
            )

    async def _connect_and_serve(self) -> None:
        refused_in_a_row = 0
        while not self._closed:
            resuming = self.handle is not None
            self._set_state(SessionState.RESUMING if resuming else SessionState.CONNECTING)
            await self._keep_to_attempt_limit()
            if self._closed:
                return
            # The seed is known before connecting: a setup declaring initial history must be
            # followed by it, and only a fresh connection gets one.
            seed = [] if resuming or self.seed is None else list(self.seed())
            initial = bool(seed) and self.seed_mode == "initial_history"
            try:
                session = await self._model.connect(
                    SessionResumptionConfig(handle=self.handle),
                    bad_input=self._bad_input,
                    initial_history=initial,
                )
            except LiveSessionError as exc:
                if await self._after_failure(exc, during_handshake=True, resuming=resuming):
                    continue
                return
            connected_at = time.monotonic()
            self._note_connected(session, resuming)
            error = await self._serve(session, seed, initial_history=initial)
            self._session = None
            self._live.clear()
            self._cancel_handover_timer()
            if self._closed:
                return
            stable = time.monotonic() - connected_at >= self.policy.stable_after_s
            if stable:
                self._backoff.reset()
                refused_in_a_row = 0
            if self._handover_requested and error is None:
                self._handover_requested = False
                if not stable:
                    # A goAway soon after connecting: a service under strain, or a broken or
                    # hostile one. Each such handover climbs the backoff like a failure.
                    log.warning("session.handover_early", after_s=self.policy.stable_after_s)
                    await self._back_off(self._backoff.next_delay())
                continue  # goAway: resume on a new connection
            self._handover_requested = False
            if error is None:
                error = LiveSessionError(
                    LiveErrorCode.FETCH_ERROR,
                    "The Live connection ended.",
                    close_code=session.close_code,
                    close_reason=session.close_reason,
                )
            self._model.credential_refused(error)
            if error.close_code in (1007, 1008) and not error.credential_refused:
                refused_in_a_row += 1
                if refused_in_a_row >= self.policy.max_refused_in_a_row:
                    self._fail(error)
                    return
            if not await self._after_failure(error, during_handshake=False, resuming=True):
                return

    def _note_connected(self, session: LiveSession, resumed: bool) -> None:
        self.stats.connections += 1
        if resumed:
            self.stats.resumptions += 1
            log.info("session.resumed", connections=self.stats.connections)
        elif self.stats.connections > 1:
            self.stats.fresh_starts += 1
            log.warning("session.fresh_start", connections=self.stats.connections)
        self._session = session
        self._connection += 1
        self._resumable = False

    async def _after_failure(
        self, error: LiveSessionError, *, during_handshake: bool, resuming: bool
    ) -> bool:
        """Log, classify and wait. False when the session must stop."""
        kind = classify(error, during_handshake=during_handshake, resuming=resuming)
        self.stats.failures += 1
        self.stats.last_error = str(error)
        log.warning(
            "session.failure",
            kind=str(kind),
            code=str(error.code),
            close_code=error.close_code,
            reason=error.close_reason,
            http_status=error.http_status,
            handshake=during_handshake,
        )
        if kind is FailureKind.FATAL:
            self._fail(error)
            return False
        if kind is FailureKind.RESUME_REFUSED:
            log.warning("session.context_lost", reason=error.close_reason)
            self._set_handle(None)
            return True
        await self._back_off(self._backoff.next_delay(kind))
        return not self._closed

    async def _back_off(self, delay: float) -> None:
        if delay > 0:
            self.stats.next_attempt_in_s = delay
            self._set_state(SessionState.BACKING_OFF)
            log.info("session.backoff", delay_s=round(delay, 3), attempt=self._backoff.attempt)
        await self._wait(delay)  # even 0 s: yield to the loop between attempts
        self.stats.next_attempt_in_s = None

    async def _keep_to_attempt_limit(self) -> None:
        delay = self._limiter.reserve(self._now())
        if delay <= 0:
            return
        self.stats.attempts_limited += 1
        self.stats.next_attempt_in_s = delay
        self._set_state(SessionState.BACKING_OFF)
        log.warning(
            "session.attempts_limited",
            delay_s=round(delay, 3),
            per_minute=self.policy.attempts_per_minute,
        )
        await self._wait(delay)
        self.stats.next_attempt_in_s = None

    def _now(self) -> float:
        # Real time, or the time slept when the sleep is simulated (tests): the attempt limit
        # then counts the time the schedule says has passed.
        return max(time.monotonic(), self._slept_until)

    async def _wait(self, delay: float) -> None:
        self._slept_until = self._now() + delay
        await self._sleep(delay)

    def _fail(self, error: LiveSessionError) -> None:
        self._fatal = error
        self.stats.last_error = str(error)
        log.error(
            "session.failed",
            code=str(error.code),
            close_code=error.close_code,
            reason=error.close_reason,
            http_status=error.http_status,
        )
        self._set_state(SessionState.FAILED)
        self._changed.set()
        self._end_inbox()

    async def _serve(
        self, session: LiveSession, seed: Sequence[Content], *, initial_history: bool
    ) -> LiveSessionError | None:
        """Seed a fresh connection, replay what was held, go live, and pump messages until the
        connection ends."""
        try:
            await self._send_seed(session, seed, initial_history)
            await self._flush_replay(session)
        except LiveSessionError as exc:
            return exc if session.is_closed else None
        self._set_state(SessionState.LIVE)
        self._live.set()
        while True:
            try:
                async for message in session.receive():
                    await self._handle(message)
                return None
            except LiveSessionError as exc:
                if exc.code is not LiveErrorCode.PARSE_FAILED or session.is_closed:
                    return exc
                # skip it, read on
                self._bad_input.note("session.frame_unreadable", "not_json", error=exc.message)

    async def _send_seed(
        self, session: LiveSession, turns: Sequence[Content], initial_history: bool
    ) -> None:
        """The seed before anything else: the initial history the setup declared, in one frame
        whose ``turnComplete: true`` ends it, or turns added to the context."""
        if turns:
            await session.send_history(turns, turn_complete=initial_history)
            log.info("session.seeded", turns=len(turns),
                     mode="initial_history" if initial_history else "context")

    async def _flush_replay(self, session: LiveSession) -> None:
        # New realtime input keeps going into the buffer until it is empty and the session is
        # marked live, with no await in between: order is kept.
        while len(self._replay):
            kind, payload = self._replay.popleft()
            try:
                await _send_one(session, kind, payload)
            except LiveSessionError:
                self._replay.appendleft(kind, payload)
                raise
            if self.stats.connections > 1:  # held before the first connection: not a replay
                self.stats.replayed_chunks += 1
        video, self._pending_video = self._pending_video, None
        if video is not None:
            await session.send_video_realtime(video)

    async def _handle(self, message: LiveServerMessage) -> None:
        if isinstance(message, LiveSessionResumptionUpdate):
            if message.resumable and message.new_handle:
                self._set_handle(message.new_handle)
            self._resumable = message.resumable
            self._maybe_hand_over()
            return
        if isinstance(message, LiveServerGoingAwayNotice):
            self._on_go_away(message.time_left)
            return
        if isinstance(message, LiveServerToolCall):
            run, resend, duplicates = self._calls.on_calls(message.function_calls, self._connection)
            if duplicates:
                self.stats.duplicate_tool_calls += duplicates
                log.warning("tool.duplicate_call", count=duplicates, resent=len(resend))
            if resend:
                self._resending = asyncio.ensure_future(self.send_function_responses(resend))
            if not run:
                return
            message = dataclasses.replace(message, function_calls=run)
        elif isinstance(message, LiveServerToolCallCancellation):
            self._calls.cancel(message.function_ids)
        await self._inbox.put(message)
        if isinstance(message, LiveServerContent) and message.turn_complete:
            self._maybe_hand_over()

    def _set_handle(self, handle: str | None) -> None:
        self.handle = handle
        if self.on_handle is not None:
            try:
                self.on_handle(handle)
            except Exception:
                log.exception("session.listener_failed")

    # -- goAway handover ------------------------------------------------------------------------

    def _on_go_away(self, time_left: float) -> None:
        self.stats.go_aways += 1
        log.info("session.go_away", time_left_s=time_left)
        self._handover_requested = True
        margin = min(self.policy.handover_margin_s, time_left / 2)
        self._cancel_handover_timer()
        loop = asyncio.get_running_loop()
        self._handover_timer = loop.call_later(max(time_left - margin, 0.0), self._hand_over_now)
        self._maybe_hand_over()

    def _maybe_hand_over(self) -> None:
        if (
            self._handover_requested
            and self._resumable
            and not self._calls.outstanding(self._connection)
        ):
            self._hand_over_now()

    def _hand_over_now(self) -> None:
        session = self._session
        if session is None or not self._handover_requested or not self._live.is_set():
            return
        self._cancel_handover_timer()
        self._live.clear()  # from here realtime input is held for the next connection
        log.info("session.handover", resumable=self._resumable)
        self._closing = asyncio.ensure_future(session.close())

    def _cancel_handover_timer(self) -> None:
        if self._handover_timer is not None:
            self._handover_timer.cancel()
            self._handover_timer = None

    # -- state --------------------------------------------------------------------------------

    def _set_state(self, state: SessionState) -> None:
        if self.stats.state == state:
            return
        if state is SessionState.LIVE and self.stats.lost_at is not None:
            self.stats.reconnect_gaps.observe(time.monotonic() - self.stats.lost_at)
            self.stats.lost_at = None
        elif self.stats.state is SessionState.LIVE:
            self.stats.lost_at = time.monotonic()
        self.stats.state = state
        self.stats.state_since = time.time()
        log.info("session.state", state=str(state))
        for listener in list(self._listeners):
            try:
                listener(self.stats)
            except Exception:
                log.exception("session.listener_failed")


async def _send_one(
    session: LiveSession, kind: RealtimeKind, payload: GenerativeContentBlob | str | None
) -> None:
    if kind == "audio" and isinstance(payload, GenerativeContentBlob):
        await session.send_audio_realtime(payload)
    elif kind == "text" and isinstance(payload, str):
        await session.send_text_realtime(payload)
    elif kind == "activity_start":
        await session.send_activity_start()
    elif kind == "activity_end":
        await session.send_activity_end()
    elif kind == "audio_stream_end":
        await session.send_audio_stream_end()


def _with_compression(
    model: LiveGenerativeModel, compression: ContextWindowCompression | None
) -> LiveGenerativeModel:
    config = model.generation_config
    if compression is None or config.context_window_compression is not None:
        return model
    clone = LiveGenerativeModel.__new__(LiveGenerativeModel)
    clone.__dict__.update(model.__dict__)
    clone.generation_config = dataclasses.replace(config, context_window_compression=compression)
    return clone
