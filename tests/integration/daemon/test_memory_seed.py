"""The daemon seeds a fresh session with the remembered turns as ``[memory] seed`` says: as
declared initial history (the default, which a model such as gemini-3.1-flash-live requires),
or as plain context; a reload that changes it builds the session again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agent.build.memory import session_mark
from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.live.memory import Saved, Turn, encode
from agent.systemd import Notifier

from .conftest import emulator_config

T = 10.0
TURNS = (Turn("user", "my name is Ada"), Turn("model", "Hello Ada."))


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.02)


def config(endpoint: str, memory_file: Path, seed: str | None) -> str:
    line = "" if seed is None else f'seed = "{seed}"'
    return emulator_config(endpoint, f'[memory]\nfile = "{memory_file}"\n{line}')


@pytest.mark.parametrize(("seed", "client_content", "setup_history", "turn_complete"), [
    (None, "initial_history_only", {"initialHistoryInClientContent": True}, True),
    ("context", "any", None, False),
])
async def test_a_fresh_session_is_seeded_as_configured(
    seed: str | None, client_content: Any, setup_history: object, turn_complete: bool,
    tmp_path: Path,
) -> None:
    memory_file = tmp_path / "conversation.json"
    path = tmp_path / "agent.toml"
    async with Emulator(EmulatorConfig(client_content=client_content)) as emulator:
        path.write_text(config(emulator.url, memory_file, seed))
        parsed = parse_config(path.read_text(), base_dir=tmp_path, source=path)
        # the turns of an earlier run, without a handle: the session starts fresh
        memory_file.write_bytes(encode(Saved(session_mark(parsed), None, time.time(), TURNS)))
        memory_file.chmod(0o600)
        daemon = Daemon(parsed, notifier=Notifier(""))
        task = asyncio.create_task(daemon.run())
        try:
            await until(lambda: daemon.parts is not None and daemon.parts.session.handle)
            connection = emulator.recordings.connection(1)
            [session] = emulator.sessions.sessions.values()
            await until(lambda: len(session.state.history) >= 2)
            assert session.state.history[:2] == [("user", "my name is Ada"),
                                                 ("model", "Hello Ada.")]
            if seed is None:  # a reload to the other way builds the session again
                path.write_text(config(emulator.url, memory_file, "context"))
                daemon._reload.set()  # what SIGHUP does
                await until(lambda: daemon.parts is not None
                            and daemon.parts.session.seed_mode == "context")
        finally:
            daemon.stop()
            assert await task == 0
    setup = connection.received[0].message["setup"]
    assert setup.get("historyConfig") == setup_history
    assert connection.kinds()[:2] == ["setup", "clientContent"], "the seed before any audio"
    content = connection.received[1].message["clientContent"]
    assert content["turnComplete"] is turn_complete
    assert [t["parts"][0]["text"] for t in content["turns"]] == ["my name is Ada", "Hello Ada."]
    assert connection.close_code in (None, 1000)
