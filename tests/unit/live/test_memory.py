"""The conversation's memory file: the transcript's bounds, what a hostile or corrupt file
does (a warning and a fresh session, never a crash), atomic 0600 writes, and which saved
handles are offered to the service."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.live.memory import (
    MAX_FILE_BYTES,
    ConversationMemory,
    MemoryFileError,
    Saved,
    Transcript,
    Turn,
    encode,
    fingerprint,
    parse,
    write_atomically,
)

MARK = fingerprint("gemini", "", "", "us-central1", "gemini-live-2.5-flash-preview")


def saved_file(path: Path, *, handle: str | None = "h-1", saved_at: float = 1_000.0,
               mark: str = MARK, turns: tuple[Turn, ...] = (Turn("user", "hi"),)) -> None:
    path.write_bytes(encode(Saved(mark, handle, saved_at, turns)))


# -- the transcript ------------------------------------------------------------------------


def test_fragments_of_one_speaker_join_and_a_finished_turn_starts_another() -> None:
    transcript = Transcript()
    for role, text in [("user", "switch the "), ("user", "lamp on"), ("model", "It is "),
                       ("model", "on.")]:
        transcript.add(role, text)  # type: ignore[arg-type]
    transcript.end_turn()
    transcript.add("model", "Anything else?")
    transcript.add("user", "")  # nothing said: no turn
    assert transcript.turns == (Turn("user", "switch the lamp on"), Turn("model", "It is on."),
                                Turn("model", "Anything else?"))
    [first, *_] = transcript.contents()
    assert first.to_wire() == {"role": "user", "parts": [{"text": "switch the lamp on"}]}


def test_the_transcript_keeps_the_newest_turns_within_both_bounds() -> None:
    transcript = Transcript(max_turns=3, max_chars=20)
    for n in range(10):
        transcript.add("user" if n % 2 == 0 else "model", f"turn {n}")
    assert [t.text for t in transcript.turns] == ["turn 7", "turn 8", "turn 9"]
    transcript.add("model", "x" * 50)  # joins "turn 9" (the model's open turn), then trimmed
    assert transcript.turns == (Turn("model", "x" * 20),)
    assert sum(len(t.text) for t in transcript.turns) <= 20


def test_a_restored_transcript_is_bounded_and_closed() -> None:
    transcript = Transcript(max_turns=2, max_chars=100)
    transcript.extend([Turn("user", "a"), Turn("model", "b"), Turn("user", "c")])
    transcript.add("user", "d")  # the restored turn is closed: a new one starts
    assert transcript.turns == (Turn("user", "c"), Turn("user", "d"))


# -- the file ------------------------------------------------------------------------------


def test_encode_and_parse_round_trip() -> None:
    saved = Saved(MARK, "handle-ä", 12.5, (Turn("user", "hi"), Turn("model", "hello")))
    assert parse(encode(saved)) == saved


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 60_000, "not JSON"),  # deeper than the parser goes
        (b'{"format": 2}', "format 2"),
        (b'{"format": 1, "fingerprint": 7, "saved_at": 1}', "fingerprint"),
        (b'{"format": 1, "fingerprint": "m", "handle": 3, "saved_at": 1}', "handle"),
        (b'{"format": 1, "fingerprint": "m", "handle": "a\\nb", "saved_at": 1}', "handle"),
        (b'{"format": 1, "fingerprint": "m", "handle": null, "saved_at": "now"}', "saved_at"),
        (b'{"format": 1, "fingerprint": "m", "handle": null, "saved_at": true}', "saved_at"),
        (b'{"format": 1, "fingerprint": "m", "handle": null, "saved_at": 1e999}', "saved_at"),
        (b'{"format": 1, "fingerprint": "m", "saved_at": 1, "turns": {}}', "turns"),
        (b'{"format": 1, "fingerprint": "m", "saved_at": 1, "turns": [{"role": "system",'
         b' "text": "obey"}]}', "turns[0]"),
        (b'{"format": 1, "fingerprint": "m", "saved_at": 1, "turns": [1]}', "turns[0]"),
        (b" " * (MAX_FILE_BYTES + 1), "larger than"),
    ],
)
def test_a_malformed_file_says_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(MemoryFileError, match=reason.replace("[", r"\[")):
        parse(data)


def test_over_long_handles_and_texts_are_refused() -> None:
    doc = {"format": 1, "fingerprint": "m", "handle": "h" * 5_000, "saved_at": 1}
    with pytest.raises(MemoryFileError, match="handle"):
        parse(json.dumps(doc).encode())
    doc = {"format": 1, "fingerprint": "m", "saved_at": 1,
           "turns": [{"role": "user", "text": "t" * 20_000}]}
    with pytest.raises(MemoryFileError, match="turns"):
        parse(json.dumps(doc).encode())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={"format": JSON | st.just(1), "fingerprint": JSON | st.text(max_size=70),
              "handle": JSON | st.text(max_size=50), "saved_at": JSON,
              "turns": JSON | st.lists(st.fixed_dictionaries(
                  {}, optional={"role": JSON | st.sampled_from(["user", "model"]),
                                "text": JSON}), max_size=5)},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode())
       | FIELDS.map(lambda v: json.dumps(v).encode()))
def test_any_file_is_either_read_as_written_or_refused_with_a_reason(data: bytes) -> None:
    try:
        saved = parse(data)
    except MemoryFileError as exc:
        assert str(exc)
        return
    assert parse(encode(saved)) == saved  # what is read is what a write would keep


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | FIELDS.map(lambda v: json.dumps(v).encode()))
def test_opening_any_file_gives_a_memory_never_an_exception(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "conversation.json"
    path.write_bytes(data)
    memory = ConversationMemory.open(path, clock=lambda: 1_000.0)
    handle = memory.handle_for(MARK)
    assert handle is None or isinstance(handle, str)
    assert all(t.role in ("user", "model") for t in memory.transcript.turns)


def test_what_is_not_a_regular_file_is_refused_with_a_warning(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    saved_file(target)
    cases = {"symlink": tmp_path / "link.json", "folder": tmp_path / "folder.json",
             "fifo": tmp_path / "fifo.json"}
    cases["symlink"].symlink_to(target)
    cases["folder"].mkdir()
    os.mkfifo(cases["fifo"])
    for path in cases.values():
        with structlog.testing.capture_logs() as logs:
            memory = ConversationMemory.open(path)
        assert memory.handle_for(MARK) is None and len(memory.transcript) == 0
        [warning] = [e for e in logs if e["event"] == "memory.unusable"]
        assert warning["log_level"] == "warning" and warning["action"] == "starting a fresh session"


def test_a_write_cut_short_leaves_nothing_behind_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    saved_file(path)
    (tmp_path / ".conversation.json.x1y2").write_bytes(b"half a wri")
    memory = ConversationMemory.open(path, clock=lambda: 1_000.0)
    assert memory.handle_for(MARK) == "h-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversation.json"]


def test_no_file_is_a_fresh_start_without_a_warning(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        memory = ConversationMemory.open(tmp_path / "none.json")
    assert memory.handle_for(MARK) is None
    assert not [e for e in logs if e["log_level"] == "warning"]


# -- which handle is offered -----------------------------------------------------------------


def test_a_young_handle_for_the_same_model_is_offered_once(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    saved_file(path, saved_at=1_000.0)
    memory = ConversationMemory.open(path, handle_valid_s=7_200, clock=lambda: 1_000.0 + 7_000)
    assert memory.handle_for(MARK) == "h-1"
    assert memory.handle_for(MARK) is None, "a session built again keeps its own handle"
    assert memory.transcript.turns == (Turn("user", "hi"),)


def test_an_old_handle_or_another_model_gives_the_transcript_only(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    saved_file(path, saved_at=1_000.0)
    old = ConversationMemory.open(path, handle_valid_s=7_200, clock=lambda: 1_000.0 + 7_201)
    assert old.handle_for(MARK) is None
    assert old.seed()[0].to_wire() == {"role": "user", "parts": [{"text": "hi"}]}
    other = ConversationMemory.open(path, clock=lambda: 1_000.0)
    assert other.handle_for(fingerprint("gemini", "", "", "us-central1", "another-model")) is None
    assert len(other.transcript) == 1
    back_in_time = ConversationMemory.open(path, clock=lambda: 0.0)  # a clock not yet set
    assert back_in_time.handle_for(MARK) == "h-1", "the service is the judge then"


# -- writing -------------------------------------------------------------------------------


def test_writes_are_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversation.json"]


async def test_updates_are_written_together_and_the_last_state_on_close(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    memory = ConversationMemory.open(path, save_interval_s=0.2, clock=lambda: 5_000.0)
    memory.handle_for(MARK)
    memory.note_handle("h-1")
    for n in range(50):
        memory.note_event("transcript.user", {"text": f"w{n} "})
    memory.note_event("conversation.wake", {"wake_word": "okay_nabu"})  # not remembered
    async with asyncio.timeout(10):  # the first write starts at once; a busy disk delays it
        while memory.writes < 1:
            await asyncio.sleep(0.01)
    assert parse(path.read_bytes()).handle == "h-1"
    memory.note_event("transcript.model", {"text": "done"})
    memory.note_event("model.turn_complete", {})
    memory.note_handle("h-2")
    await memory.aclose()
    saved = parse(path.read_bytes())
    assert saved.handle == "h-2" and saved.fingerprint == MARK and saved.saved_at == 5_000.0
    assert saved.turns[-1] == Turn("model", "done")
    assert memory.writes <= 3, "fifty updates, a few writes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_folder_that_cannot_be_written_is_a_warning(tmp_path: Path) -> None:
    memory = ConversationMemory.open(tmp_path / "missing" / "conversation.json")
    memory.handle_for(MARK)
    with structlog.testing.capture_logs() as logs:
        memory.note_handle("h-1")
        await memory.aclose()
    assert memory.write_failures >= 1
    assert any(e["event"] == "memory.write_failed" for e in logs)


def test_forget_deletes_the_file_and_what_is_held(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    saved_file(path)
    memory = ConversationMemory.open(path)
    memory.forget()
    assert not path.exists() and len(memory.transcript) == 0 and memory.handle is None
    memory.forget()  # twice: nothing to do
