"""What a conversation remembers across restarts: the newest resumption handle and a compact
transcript of the last turns, in one small file.

A restarted agent resumes its session with the saved handle while the service still honours it
(the Developer API keeps a handle two hours after the session's last connection ended). When
the handle is too old to try, was written for another model or service, or the service refuses
it, the fresh session is seeded with the transcript (its initial history, or plain context:
``ResilientSession.seed_mode``), so the model keeps the context anyway.

The file is input like any other. It is read up to ``MAX_FILE_BYTES`` and every field is
checked; a file that cannot be read or parsed is reported with one warning and the agent starts
a fresh session with nothing remembered, never a crash. Writes are atomic (a temporary file in
the same folder, fsync, rename), mode 0600, done in a worker thread at most once per
``save_interval_s`` so neither the loop nor the SD card pays for every handle update.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import structlog

from agent.live.limits import MAX_HANDLE_CHARS
from agent.live.types import Content, Part

log = structlog.get_logger(__name__)

Role = Literal["user", "model"]
ROLES: Final = ("user", "model")

FORMAT: Final = 1
"""The file's format version; another version is not read."""
MAX_FILE_BYTES: Final = 64 * 1024
"""The most of the file read; a larger file is not trusted."""
MAX_TURNS: Final = 64
MAX_CHARS: Final = 16_384
"""The largest transcript bounds a caller may ask for."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of the transcript: who spoke and what was said."""

    role: Role
    text: str


class Transcript:
    """The last turns of a conversation, at most ``max_turns`` and ``max_chars`` in all (the
    oldest turns go first; a turn longer than all of it keeps its newest words).

    Transcript fragments arrive in pieces: consecutive fragments of one role join into one turn,
    and ``end_turn()`` closes the model's turn so its next words start another.
    """

    def __init__(self, max_turns: int = 12, max_chars: int = 4_000) -> None:
        self.max_turns = max(1, min(max_turns, MAX_TURNS))
        self.max_chars = max(1, min(max_chars, MAX_CHARS))
        self._turns: deque[Turn] = deque()
        self._chars = 0
        self._open = False  # the last turn may still grow

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    def __len__(self) -> int:
        return len(self._turns)

    def add(self, role: Role, text: str) -> None:
        """A fragment of what ``role`` said."""
        if not text:
            return
        last = self._turns[-1] if self._turns else None
        if last is not None and self._open and last.role == role:
            self._turns.pop()
            self._chars -= len(last.text)
            text = last.text + text
        self._push(Turn(role, text))
        self._open = True

    def end_turn(self) -> None:
        """The model's turn ended (complete or interrupted)."""
        self._open = False

    def extend(self, turns: Iterable[Turn]) -> None:
        """Add whole turns (restored from the file)."""
        for turn in turns:
            self._push(turn)
        self._open = False

    def contents(self) -> list[Content]:
        """The turns as ``clientContent`` turns, oldest first."""
        return [Content(role=t.role, parts=[Part(text=t.text)]) for t in self._turns]

    def _push(self, turn: Turn) -> None:
        if len(turn.text) > self.max_chars:
            turn = Turn(turn.role, turn.text[-self.max_chars :])
        self._turns.append(turn)
        self._chars += len(turn.text)
        while len(self._turns) > self.max_turns or self._chars > self.max_chars:
            self._chars -= len(self._turns.popleft().text)


@dataclass(frozen=True, slots=True)
class Saved:
    """What the file held, checked."""

    fingerprint: str
    handle: str | None
    saved_at: float
    turns: tuple[Turn, ...]


class MemoryFileError(ValueError):
    """The memory file cannot be used; the message says why, in plain words."""


def fingerprint(*parts: object) -> str:
    """A short digest of what a handle is bound to (the service, the endpoint, the model):
    the file keeps this, never the values themselves."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def parse(data: bytes) -> Saved:
    """The file's bytes, checked field by field.

    Raises:
        MemoryFileError: anything not as ``encode`` writes it.
    """
    if len(data) > MAX_FILE_BYTES:
        raise MemoryFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MemoryFileError(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise MemoryFileError("not a JSON object")
    if doc.get("format") != FORMAT:
        raise MemoryFileError(f"format {_brief(doc.get('format'))}, expected {FORMAT}")
    mark = doc.get("fingerprint")
    if not isinstance(mark, str) or not 0 < len(mark) <= 64:
        raise MemoryFileError("fingerprint missing or malformed")
    handle = doc.get("handle")
    if handle is not None and (not isinstance(handle, str) or not 0 < len(handle)
                               <= MAX_HANDLE_CHARS or not handle.isprintable()):
        raise MemoryFileError("handle malformed")
    saved_at = doc.get("saved_at")
    if (not isinstance(saved_at, (int, float)) or isinstance(saved_at, bool)
            or not math.isfinite(saved_at)):
        raise MemoryFileError("saved_at must be a number of seconds")
    raw_turns = doc.get("turns", [])
    if not isinstance(raw_turns, list) or len(raw_turns) > MAX_TURNS:
        raise MemoryFileError(f"turns must be a list of at most {MAX_TURNS}")
    turns = tuple(_turn(item, i) for i, item in enumerate(raw_turns))
    return Saved(mark, handle, float(saved_at), turns)


def _turn(item: object, index: int) -> Turn:
    if not isinstance(item, dict):
        raise MemoryFileError(f"turns[{index}] is not an object")
    role, text = item.get("role"), item.get("text")
    if role not in ROLES or not isinstance(text, str) or len(text) > MAX_CHARS:
        raise MemoryFileError(f"turns[{index}] needs a role (user, model) and a text")
    return Turn(role, text)


def _brief(value: object) -> str:
    return repr(value)[:40]


def encode(saved: Saved) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "fingerprint": saved.fingerprint,
        "handle": saved.handle,
        "saved_at": round(saved.saved_at, 3),
        "turns": [{"role": t.role, "text": t.text} for t in saved.turns],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def read_file(path: Path) -> bytes | None:
    """The file's bytes (at most one more than ``MAX_FILE_BYTES``); None when there is none.
    Only a regular file is read: a symlink, a FIFO or a device is refused.

    Raises:
        MemoryFileError: it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MemoryFileError(f"cannot be opened: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MemoryFileError("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise MemoryFileError(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a 0600 temporary file in the same folder, fsync,
    rename, fsync of the folder. A crash leaves the old file or the new one, never a part."""
    folder = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a folder be synced
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class ConversationMemory:
    """The conversation's memory, kept in ``path``.

    ``open()`` reads what an earlier run left; the builder asks ``handle_for(mark)`` for a
    handle to resume and lets the session seed fresh connections with ``seed()``; the session
    tells it each new handle, the daemon every transcript fragment, and ``aclose()`` writes the
    last state when the agent stops.
    """

    def __init__(
        self,
        path: Path,
        transcript: Transcript,
        *,
        handle_valid_s: float,
        save_interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.transcript = transcript
        self.handle_valid_s = handle_valid_s
        self.save_interval_s = save_interval_s
        self._clock = clock
        self._saved: Saved | None = None  # what the file held at start
        self.fingerprint = ""
        self.handle: str | None = None
        self._dirty = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None  # a write running in a thread
        self.writes = 0
        self.write_failures = 0

    @classmethod
    def open(cls, path: Path, *, max_turns: int = 12, max_chars: int = 4_000,
             handle_valid_s: float = 7_200.0, save_interval_s: float = 2.0,
             clock: Callable[[], float] = time.time) -> ConversationMemory:
        """The memory kept in ``path``: what an earlier run saved there, or nothing (with one
        warning) when the file is missing, unreadable, corrupt or hostile."""
        memory = cls(path, Transcript(max_turns, max_chars), handle_valid_s=handle_valid_s,
                     save_interval_s=save_interval_s, clock=clock)
        for stale in path.parent.glob(f".{path.name}.*"):  # a write cut short by a crash
            with contextlib.suppress(OSError):
                stale.unlink()
        try:
            data = read_file(path)
            saved = parse(data) if data is not None else None
        except MemoryFileError as exc:
            log.warning("memory.unusable", path=str(path), reason=str(exc),
                        action="starting a fresh session")
            saved = None
        if saved is not None:
            memory._saved = saved
            memory.transcript.extend(saved.turns)
            log.info("memory.loaded", path=str(path), turns=len(memory.transcript),
                     handle=saved.handle is not None)
        return memory

    def handle_for(self, mark: str) -> str | None:
        """The saved handle, if it was made for ``mark`` (same service and model) and is
        young enough to be honoured; from now on the memory belongs to ``mark``."""
        self.fingerprint = mark
        saved, self._saved = self._saved, None
        if saved is None or saved.handle is None:
            return None
        if saved.fingerprint != mark:
            log.info("memory.handle_dropped", reason="the model or service changed")
            return None
        age = self._clock() - saved.saved_at
        if age > self.handle_valid_s:  # a clock set back (age < 0) still tries it
            log.info("memory.handle_dropped", reason="too old", age_s=round(age),
                     valid_s=self.handle_valid_s)
            return None
        self.handle = saved.handle
        log.info("memory.resuming", age_s=round(age), turns=len(self.transcript))
        return saved.handle

    def seed(self) -> list[Content]:
        """The turns a fresh session starts from."""
        return self.transcript.contents()

    # -- what happens -------------------------------------------------------------------------

    def note_handle(self, handle: str | None) -> None:
        """The session's newest handle (None: it has none now)."""
        if handle != self.handle:
            self.handle = handle
            self._changed()

    def note_event(self, name: str, fields: Mapping[str, Any]) -> None:
        """A conversation event (``transcript.user``, ``transcript.model``, ``model.text``,
        ``model.turn_complete``, ``model.interrupted``); others are ignored."""
        text = fields.get("text")
        if name == "transcript.user" and isinstance(text, str):
            self.transcript.add("user", text)
        elif name in ("transcript.model", "model.text") and isinstance(text, str):
            self.transcript.add("model", text)
        elif name in ("model.turn_complete", "model.interrupted"):
            self.transcript.end_turn()
        else:
            return
        self._changed()

    def _changed(self) -> None:
        self._dirty.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="memory-writer")

    # -- writing ------------------------------------------------------------------------------

    def snapshot(self) -> Saved:
        return Saved(self.fingerprint, self.handle, self._clock(), self.transcript.turns)

    async def _write_loop(self) -> None:
        while self._dirty.is_set():
            self._dirty.clear()
            await self._write()
            await asyncio.sleep(self.save_interval_s)

    async def _write(self) -> None:
        if self._writing is not None:  # never two writes at once: the older could land last
            with contextlib.suppress(OSError):
                await asyncio.shield(self._writing)
        data = encode(self.snapshot())
        loop = asyncio.get_running_loop()
        self._writing = loop.run_in_executor(None, write_atomically, self.path, data)
        try:
            await asyncio.shield(self._writing)  # a cancelled writer lets the thread finish
            self.writes += 1
        except OSError as exc:
            self.write_failures += 1
            if self.write_failures <= 3 or self.write_failures % 100 == 0:
                log.warning("memory.write_failed", path=str(self.path),
                            error=exc.strerror or str(exc), failures=self.write_failures)

    async def aclose(self) -> None:
        """Write the last state (the time of this write is when the session ended)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._writing is not None:
            with contextlib.suppress(OSError):
                await self._writing
        if self.fingerprint:
            await self._write()

    def forget(self) -> None:
        """Delete the file and what is held (the handle and the transcript)."""
        self.handle = None
        self.transcript = Transcript(self.transcript.max_turns, self.transcript.max_chars)
        forget(self.path)


def forget(path: Path) -> None:
    """Delete a memory file, if there is one."""
    try:
        path.unlink()
        log.info("memory.forgotten", path=str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("memory.forget_failed", path=str(path), error=exc.strerror or str(exc))

