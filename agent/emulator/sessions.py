"""Sessions and resumption handles: conversation state that outlives a connection."""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field

from agent.emulator import wire


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
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def context_tokens(self) -> float:
        """Tokens in the context window."""
        return sum(self.tokens.values())

    def snapshot(self) -> ConversationState:
        """An independent copy."""
        return copy.deepcopy(self)


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


@dataclass(frozen=True, slots=True)
class HandleRecord:
    """A resumption handle and the state it restores."""

    session_id: str
    state: ConversationState
    issued_at: float


class SessionStore:
    """All sessions of one emulator and the handles it issued."""

    def __init__(self, handle_ttl_s: float) -> None:
        self.handle_ttl_s = handle_ttl_s
        self.sessions: dict[str, ServerSession] = {}
        self._handles: dict[str, HandleRecord] = {}

    def create(self, model: str) -> ServerSession:
        """A new session with an unguessable id."""
        session = ServerSession(id=secrets.token_hex(8), model=model)
        self.sessions[session.id] = session
        return session

    def issue_handle(self, session: ServerSession, now: float) -> str:
        """A new handle for the session's current state."""
        handle = f"emu-{session.id}-{secrets.token_urlsafe(12)}"
        self._handles[handle] = HandleRecord(session.id, session.state.snapshot(), now)
        return handle

    def resume(self, handle: str, model: str, now: float) -> ServerSession:
        """The session a handle resumes, its state restored; ProtocolViolation if refused."""
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
