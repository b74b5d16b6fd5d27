"""What the emulator received and sent, per connection and per session.

Times are ``time.monotonic()`` at arrival (or at send), so a test in the same process can
compare them with its own clock to measure latency.

Recordings are bounded: frames kept in all (``max_bytes``, counted as their size on the wire
or, for media, decoded) and connections kept (``max_connections``). When either is reached the
oldest closed connections are forgotten whole; when only open connections remain, further
frames are not kept and their connection counts them in ``unrecorded``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Received:
    """One client message, in arrival order; ``index`` counts messages on its connection."""

    index: int
    t: float
    kind: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Decoded samples of one realtime audio message."""

    t: float
    rate: int
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One received image."""

    t: float
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Sent:
    """One server message, as sent."""

    t: float
    message: dict[str, Any]


@dataclass(slots=True)
class ConnectionRecording:
    """Everything about one WebSocket connection."""

    number: int
    path: str
    opened_at: float
    session_id: str | None = None
    resumed: bool = False
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    received: list[Received] = field(default_factory=list)
    audio: list[AudioChunk] = field(default_factory=list)
    video: list[VideoFrame] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    messages: int = 0  # client messages received, kept or not
    bytes: int = 0  # size of what is kept
    unrecorded: int = 0  # frames not kept: the recordings' budget was full

    def kinds(self) -> list[str]:
        """The kinds of the received messages, in order (``realtimeInput.audio`` etc.)."""
        return [r.kind for r in self.received]

    def audio_samples(self) -> npt.NDArray[np.int16]:
        """All received audio samples of this connection, concatenated."""
        return _concat(self.audio)

    def sent_kinds(self) -> list[str]:
        """The top-level keys of the sent messages, in order."""
        return ["+".join(s.message) for s in self.sent]


@dataclass(slots=True)
class SessionRecording:
    """A session: one or more connections joined by resumption."""

    session_id: str
    connections: list[ConnectionRecording] = field(default_factory=list)

    @property
    def received(self) -> list[Received]:
        """Every message of every connection, in arrival order."""
        return [r for c in self.connections for r in c.received]

    @property
    def audio(self) -> list[AudioChunk]:
        """Audio chunks of every connection, in arrival order."""
        return [a for c in self.connections for a in c.audio]

    @property
    def video(self) -> list[VideoFrame]:
        """Video frames of every connection, in arrival order."""
        return [v for c in self.connections for v in c.video]

    def audio_samples(self) -> npt.NDArray[np.int16]:
        """All audio received in the session, across connections, concatenated."""
        return _concat(self.audio)

    def texts(self) -> list[str]:
        """Texts the user sent (clientContent text parts and realtime text), in order."""
        out: list[str] = []
        for r in self.received:
            body = next(iter(r.message.values()), None)
            if r.kind == "realtimeInput.text" and isinstance(body, dict):
                out.append(str(body.get("text", "")))
            elif r.kind == "clientContent" and isinstance(body, dict):
                for turn in body.get("turns", []) or []:
                    for part in turn.get("parts", []) if isinstance(turn, dict) else []:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            out.append(part["text"])
        return out


class Recordings:
    """All recordings of an emulator, by connection number and by session id."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, max_connections: int = 1000) -> None:
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.connections: list[ConnectionRecording] = []
        self.sessions: dict[str, SessionRecording] = {}
        self.bytes = 0
        self.forgotten = 0  # connection recordings dropped to stay within the bounds

    def open_connection(self, number: int, path: str, t: float) -> ConnectionRecording:
        """Start recording a connection."""
        rec = ConnectionRecording(number=number, path=path, opened_at=t)
        self.connections.append(rec)
        while len(self.connections) > self.max_connections and self._forget_oldest():
            pass
        return rec

    def keep(self, rec: ConnectionRecording, size: int) -> bool:
        """Whether a frame of ``size`` bytes may be kept in ``rec`` (then it is counted)."""
        while self.bytes + size > self.max_bytes:
            if not self._forget_oldest():
                rec.unrecorded += 1
                return False
        rec.bytes += size
        self.bytes += size
        return True

    def _forget_oldest(self) -> bool:
        """Drop the oldest closed connection's recording; False if every one is open."""
        for i, rec in enumerate(self.connections):
            if rec.closed_at is not None:
                del self.connections[i]
                self.bytes -= rec.bytes
                self.forgotten += 1
                session = self.sessions.get(rec.session_id or "")
                if session is not None:
                    session.connections.remove(rec)
                    if not session.connections:
                        del self.sessions[session.session_id]
                return True
        return False

    def attach(self, rec: ConnectionRecording, session_id: str, *, resumed: bool) -> None:
        """Bind a connection to its (new or resumed) session."""
        rec.session_id, rec.resumed = session_id, resumed
        self.sessions.setdefault(session_id, SessionRecording(session_id)).connections.append(rec)

    def session(self, session_id: str | None = None) -> SessionRecording:
        """A session by id, or the most recently started one."""
        if session_id is None:
            if not self.sessions:
                raise LookupError("no session has been set up yet")
            return next(reversed(self.sessions.values()))
        return self.sessions[session_id]

    def connection(self, number: int) -> ConnectionRecording:
        """A connection by its 1-based number."""
        for rec in self.connections:
            if rec.number == number:
                return rec
        raise LookupError(f"no connection {number} (never opened, or forgotten)")


def _concat(chunks: list[AudioChunk]) -> npt.NDArray[np.int16]:
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([c.samples for c in chunks]).astype(np.int16, copy=False)


@dataclass(slots=True)
class EmulatorStats:
    """Counters, and the handling time of the last 200,000 received audio frames (receive ->
    parsed -> recorded and fed to speech detection), in seconds, kept while recording."""

    connections: int = 0
    refused_handshakes: int = 0
    sessions: int = 0
    resumed: int = 0
    messages: int = 0
    audio_frames: int = 0
    video_frames: int = 0
    violations: int = 0
    faults: int = 0
    replies: int = 0  # model turns completed
    interruptions: int = 0  # replies cut short (barge-in: speech, typed input, a result)
    tool_calls: int = 0
    non_blocking_calls: int = 0  # calls to NON_BLOCKING functions: the reply did not wait
    # responses to non-blocking calls by their scheduling (SCHEDULING_UNSPECIFIED if none)
    scheduled_responses: dict[str, int] = field(default_factory=dict)
    internal_errors: int = 0  # a bug of the emulator's: closed with 1011, logged once
    dropped_slow_clients: int = 0  # clients that read nothing for ``send_timeout_s``
    backpressure_waits: int = 0  # times a connection was not read: its model had a full queue
    merged_turns: int = 0  # turns joined to the last waiting one (queue full, a call waits)
    truncated_turns: int = 0  # turns whose words were cut to ``max_turn_chars``
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))

    def frame_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of per-frame handling time, in seconds."""
        if not self.frame_times:
            return 0.0
        return float(np.percentile(np.fromiter(self.frame_times, dtype=float), q))
