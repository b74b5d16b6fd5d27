"""`edge-agent run` started, given one spoken command, and stopped, with a StateDirectory
that outlives it: the helper of the memory-across-restarts tests and benchmark. The emulator's
reply quotes the user's previous turn from its session memory (``{previous}``)."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

from agent.emulator.server import Emulator
from tests.support.daemon_process import Agent, start_agent, stop_agent
from tests.support.emulator_client import write_spoken_commands

SCENARIO = {
    "name": "memory",
    "default_reply": "Heard: {text}. Before that: {previous}.",
    "turn": [{"spoken": 1, "said": "my name is Ada"}],
}


def config_text(endpoint: str, tmp: Path) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "wav:{tmp / "command.wav"}"
echo = "none"

[audio.output]
device = "null"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[logging]
level = "info"
format = "json"
"""


def state_folder(tmp: Path) -> Path:
    """The StateDirectory (0700, as systemd makes it) and the command's WAV."""
    folder = tmp / "state"
    folder.mkdir(mode=0o700)
    write_spoken_commands(tmp / "command.wav", count=1, gap_s=2.0)
    return folder


def replies(emulator: Emulator) -> list[str]:
    """Every reply of the emulator's model, in the history of each session."""
    return [text for s in emulator.sessions.sessions.values()
            for role, text in s.state.history if role == "model"]


async def one_run(emulator: Emulator, tmp: Path, state: Path, run: int) -> tuple[Agent, float]:
    """Start the agent, let it say its one command, wait for the reply, stop it; the agent
    and the seconds from its start to the session's first live state."""
    config = tmp / "agent.toml"
    config.write_text(config_text(emulator.url, tmp))
    folder = tmp / f"run-{run}"  # each run's notify socket
    folder.mkdir()
    before = len(replies(emulator))
    started = time.monotonic()
    agent = await start_agent(config, folder, STATE_DIRECTORY=str(state))
    try:
        await agent.wait_for(lambda: len(replies(emulator)) > before, "the reply")
        await asyncio.sleep(1.0)  # the reply's last transcript and the handle after it
    finally:
        code = await stop_agent(agent)
    assert code == 0
    live = [t for t, note in agent.notes if "; live;" in note]  # STATUS= of the session
    return agent, (live[0] - started if live else float("nan"))


def saved(state: Path) -> dict[str, Any]:
    """The memory file, which must be private to the service."""
    path = state / "conversation.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_bytes())  # type: ignore[no-any-return]
