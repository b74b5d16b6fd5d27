"""What the emulator keeps is bounded: recordings, sessions, handles and history."""

from __future__ import annotations

import pytest

from agent.emulator import wire
from agent.emulator.recording import Recordings
from agent.emulator.sessions import HISTORY_TEXT_CHARS, ConversationState, SessionStore


def test_recordings_forget_the_oldest_closed_connections_for_room() -> None:
    recordings = Recordings(max_bytes=1000, max_connections=3)
    first = recordings.open_connection(1, "/p", 0.0)
    recordings.attach(first, "s1", resumed=False)
    assert recordings.keep(first, 600)
    first.closed_at = 1.0
    second = recordings.open_connection(2, "/p", 2.0)
    recordings.attach(second, "s1", resumed=True)
    assert recordings.keep(second, 600)  # the closed first connection made room
    assert [c.number for c in recordings.connections] == [2]
    assert recordings.session("s1").connections == [second] and recordings.bytes == 600
    assert not recordings.keep(second, 600)  # only an open connection is left: not kept
    assert second.unrecorded == 1 and recordings.bytes == 600
    with pytest.raises(LookupError):
        recordings.connection(1)


def test_recordings_keep_at_most_max_connections() -> None:
    recordings = Recordings(max_connections=3)
    for number in range(1, 11):
        rec = recordings.open_connection(number, "/p", float(number))
        recordings.attach(rec, f"s{number}", resumed=False)
        rec.closed_at = number + 0.5
    assert [c.number for c in recordings.connections] == [8, 9, 10]
    assert list(recordings.sessions) == ["s8", "s9", "s10"] and recordings.forgotten == 7


def _closed(store: SessionStore, at: float) -> str:
    session = store.create("m", at)
    handle = store.issue_handle(session, at)
    session.last_closed_at = at
    return handle


def test_closed_sessions_and_their_handles_go_after_the_ttl() -> None:
    store = SessionStore(10.0)
    handle = _closed(store, 0.0)
    assert store.resume(handle, "m", 5.0).model == "m"  # within the TTL
    store.create("m", 11.0)  # a new session sweeps the expired one
    assert len(store.sessions) == 1 and store.handle_count == 0
    with pytest.raises(wire.ProtocolViolation):
        store.resume(handle, "m", 11.0)


def test_the_store_keeps_max_sessions_longest_closed_first_open_ones_never() -> None:
    store = SessionStore(1000.0, max_sessions=3)
    open_session = store.create("m", 0.0)
    open_session.open_connection = 1
    handles = [_closed(store, float(t)) for t in range(1, 10)]
    assert len(store.sessions) == 3 and open_session.id in store.sessions
    assert store.evicted == 7
    assert store.resume(handles[-1], "m", 10.0).model == "m"
    with pytest.raises(wire.ProtocolViolation):
        store.resume(handles[0], "m", 10.0)


def test_a_session_keeps_its_newest_handles() -> None:
    store = SessionStore(1000.0, max_handles_per_session=2)
    session = store.create("m", 0.0)
    session.open_connection = 1
    handles = [store.issue_handle(session, float(t)) for t in range(5)]
    assert store.handle_count == 2 and session.handles == handles[-2:]
    with pytest.raises(wire.ProtocolViolation):
        store.resume(handles[0], "m", 5.0)


def test_history_keeps_the_newest_turns_and_a_bounded_text() -> None:
    state = ConversationState()
    for i in range(10):
        state.remember("user", f"{i}" + "x" * 5000, max_entries=4)
    assert [text[0] for _, text in state.history] == ["6", "7", "8", "9"]
    assert all(len(text) == HISTORY_TEXT_CHARS for _, text in state.history)
