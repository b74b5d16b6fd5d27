"""The conversation's memory through a reload, in the whole daemon against the emulator: a
new model's session starts without the old model's handle, and the file keeps only what the
new session can resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.build.memory import session_mark
from agent.config import parse_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.systemd import Notifier

from .conftest import emulator_config

T = 10.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig()) as running:
        yield running


def config(endpoint: str, memory_file: Path, model: str) -> str:
    return emulator_config(endpoint, f'[memory]\nfile = "{memory_file}"',
                           live=f'model = "{model}"')


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(T):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_reload_to_another_model_keeps_no_handle_of_the_old(
    emulator: Emulator, tmp_path: Path
) -> None:
    memory_file = tmp_path / "conversation.json"
    path = tmp_path / "agent.toml"
    path.write_text(config(emulator.url, memory_file, "gemini-live-2.5-flash-preview"))
    daemon = Daemon(parse_config(path.read_text(), base_dir=tmp_path, source=path),
                    notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: daemon.parts is not None and daemon.parts.session.handle)
        memory = daemon.memory
        assert memory is not None
        old_handle = memory.handle
        assert old_handle is not None
        path.write_text(config(emulator.url, memory_file, "gemini-2.0-flash-live-001"))
        daemon._reload.set()  # what SIGHUP does
        await until(lambda: daemon.parts is not None
                    and daemon.parts.config.live.model == "gemini-2.0-flash-live-001")
        assert memory.fingerprint == session_mark(daemon.parts.config)
        assert memory.handle != old_handle
        new_mark = memory.fingerprint
        await until(lambda: memory.handle is not None)
    finally:
        daemon.stop()
        assert await task == 0
    saved = json.loads(memory_file.read_text())
    assert saved["fingerprint"] == new_mark
    new_sessions = [s for s in emulator.sessions.sessions.values()
                    if s.model.endswith("gemini-2.0-flash-live-001")]
    [session] = new_sessions
    assert saved["handle"] in session.handles, "the handle is the new model's session's"
