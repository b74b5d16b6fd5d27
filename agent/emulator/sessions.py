"""Sessions and resumption handles: conversation state that outlives a connection.

A closed session and its handles are kept for the handle TTL after it closed, then swept; the
store keeps at most ``max_sessions`` (the longest-closed go first) and the newest
``max_handles_per_session`` handles of each.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Final

from agent.emulator import wire

HISTORY_TEXT_CHARS: Final = 1000  # what the history keeps of one turn's words


@dataclass(slots=True)
class ConversationState:
    """What the fake model remembers; a handle restores a snapshot of it."""

    user_turns: int = 0
    spoken_turns: int = 0
    calls_made: int = 0
    tokens: dict[str, float] = field(
        default_factory=lambda: {"AUDIO": 0.0, "TEXT": 0.0, "IMAGE": 0.0}
    )
    compressions: int = 0
    context_turns: int = 0  # turns given as context (or as the declared initial history)
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def context_tokens(self) -> float:
        """Tokens in the context window."""
        return sum(self.tokens.values())

    def snapshot(self) -> ConversationState:
        """An independent copy."""
        return copy.deepcopy(self)

    def previous_user_text(self) -> str:
        """The words of the newest user turn in the history ("" when there is none)."""
        return next((text for role, text in reversed(self.history) if role == "user"), "")

    def remember(self, role: str, text: str, max_entries: int) -> None:
        """Add a turn to the history, keeping the newest ``max_entries`` turns."""
        self.history.append((role, text[:HISTORY_TEXT_CHARS]))
        if len(self.history) > max_entries:
            del self.history[: len(self.history) - max_entries]


@dataclass(slots=True)
class ServerSession:
    """One Live session, spanning the connections that resumed it."""

    id: str
    model: str
    state: ConversationState = field(default_factory=ConversationState)
    ended: bool = False  # the context window filled up: no resumption
    open_connection: int | None = None
    last_closed_at: float | None = None
    connections: int = 0
    handles: list[str] = field(default_factory=list)  # issued and still valid, oldest first


@dataclass(frozen=True, slots=True)
class HandleRecord:
    """A resumption handle and the state it restores."""

    session_id: str
    state: ConversationState
    issued_at: float


class SessionStore:
    """All sessions of one emulator and the handles it issued, within the given bounds."""

    def __init__(
        self, handle_ttl_s: float, *, max_sessions: int = 256, max_handles_per_session: int = 8
    ) -> None:
        self.handle_ttl_s = handle_ttl_s
        self.max_sessions = max_sessions
        self.max_handles_per_session = max_handles_per_session
        self.sessions: dict[str, ServerSession] = {}
        self._handles: dict[str, HandleRecord] = {}
        self.evicted = 0  # sessions dropped before their handles expired (over max_sessions)

    @property
    def handle_count(self) -> int:
        """Handles that can still resume a session (some may be past their TTL until swept)."""
        return len(self._handles)

    def create(self, model: str, now: float) -> ServerSession:
        """A new session with an unguessable id; sweeps what has expired to make room."""
        self.sweep(now, adding=1)
        session = ServerSession(id=secrets.token_hex(8), model=model)
        self.sessions[session.id] = session
        return session

    def issue_handle(self, session: ServerSession, now: float) -> str:
        """A new handle for the session's current state; the session's oldest handle goes
        when it has more than ``max_handles_per_session``."""
        handle = f"emu-{session.id}-{secrets.token_urlsafe(12)}"
        self._handles[handle] = HandleRecord(session.id, session.state.snapshot(), now)
        session.handles.append(handle)
        while len(session.handles) > self.max_handles_per_session:
            del self._handles[session.handles.pop(0)]
        return handle

    def resume(self, handle: str, model: str, now: float) -> ServerSession:
        """The session a handle resumes, its state restored; ProtocolViolation if refused."""
        self.sweep(now)
        record = self._handles.get(handle)
        if record is None:
            raise wire.invalid("unknown resumption handle")
        session = self.sessions[record.session_id]
        if session.ended:
            raise wire.invalid("the session of this handle has ended")
        if session.open_connection is None:
            since = max(record.issued_at, session.last_closed_at or record.issued_at)
            if now - since > self.handle_ttl_s:
                raise wire.invalid("resumption handle expired")
        if model != session.model:
            raise wire.invalid("the model cannot change on resumption")
        session.state = record.state.snapshot()
        return session

    def sweep(self, now: float, adding: int = 0) -> None:
        """Drop closed sessions whose handles have expired, then the longest-closed ones
        while there are more than ``max_sessions`` with the ``adding`` about to be made (open
        sessions are never dropped: the connection limit bounds them)."""
        closed = sorted(
            (s for s in self.sessions.values() if s.open_connection is None),
            key=lambda s: s.last_closed_at or 0.0,
        )
        over = len(self.sessions) + adding - self.max_sessions
        for session in closed:
            expired = now - (session.last_closed_at or 0.0) > self.handle_ttl_s
            if not expired and over <= 0:
                break
            if not expired:
                self.evicted += 1
            self._drop(session)
            over -= 1

    def _drop(self, session: ServerSession) -> None:
        for handle in session.handles:
            self._handles.pop(handle, None)
        del self.sessions[session.id]
