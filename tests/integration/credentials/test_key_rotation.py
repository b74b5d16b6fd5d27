"""A key file replaced while the agent runs is used from the next connection on; a refused key
from a file that can change is fetched again instead of ending the session."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agent.build.credentials import KeyFileProvider, SecretFile
from agent.emulator.config import EmulatorConfig
from agent.emulator.faults import Fault, FaultKind
from agent.emulator.server import Emulator
from agent.live.credentials import KeptCredential
from agent.live.errors import LiveSessionError
from agent.live.model import GeminiDeveloperBackend, LiveGenerativeModel
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState

OLD, NEW = "old-key-" + "a" * 31, "new-key-" + "b" * 31
FAST = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def write_key(path: Path, key: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)  # as a rotation does: a new file in one step


def session_for(emulator: Emulator, path: Path) -> tuple[ResilientSession, KeptCredential]:
    kept = KeptCredential(KeyFileProvider(SecretFile(path, ("live", "credentials",
                                                            "api_key_file"))))
    model = LiveGenerativeModel(backend=GeminiDeveloperBackend(api_key=kept,
                                                               endpoint=emulator.url),
                                model="gemini-live-2.5-flash-preview")
    return ResilientSession(model, FAST), kept


async def test_a_rotated_key_file_is_used_from_the_next_connection(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    write_key(path, OLD)
    async with Emulator(EmulatorConfig(api_key=OLD)) as emulator:
        session, kept = session_for(emulator, path)
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            write_key(path, NEW)
            emulator.auth.api_keys = {NEW}  # the old key is revoked
            emulator.inject(Fault(FaultKind.DROP))
            async with asyncio.timeout(10):
                while session.stats.connections < 2 or session.state is not SessionState.LIVE:
                    await asyncio.sleep(0.01)
            assert session.failure is None
            assert kept() == NEW
            assert emulator.auth.refused == 0  # the new key went out at once


async def test_a_refused_key_is_read_again_and_the_session_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    write_key(path, OLD)
    async with Emulator(EmulatorConfig(api_key=NEW)) as emulator:
        session, kept = session_for(emulator, path)
        async with session:
            async with asyncio.timeout(10):
                while emulator.auth.refused < 1:
                    await asyncio.sleep(0.005)
            write_key(path, NEW)  # the owner puts the new key in place
            await asyncio.wait_for(session.wait_live(), 10)
            assert session.failure is None
            assert kept() == NEW


async def test_a_key_refused_again_and_again_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    write_key(path, OLD)
    async with Emulator(EmulatorConfig(api_key=NEW)) as emulator:
        session, _ = session_for(emulator, path)
        async with session:
            with pytest.raises(LiveSessionError) as caught:
                await asyncio.wait_for(session.wait_live(), 10)
    assert str(path) in caught.value.message
    assert OLD not in str(caught.value)


async def test_a_key_file_that_vanishes_keeps_the_last_key(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    write_key(path, OLD)
    file = SecretFile(path, ("live", "credentials", "api_key_file"))
    assert file.read() == OLD
    path.unlink()
    assert file.read() == OLD


async def test_a_key_file_missing_from_the_start_is_permanent(tmp_path: Path) -> None:
    file = SecretFile(tmp_path / "none", ("live", "credentials", "api_key_file"))
    with pytest.raises(LiveSessionError) as caught:
        file.read()
    assert caught.value.permanent
    assert "no such file" in caught.value.message.lower()
