"""`edge-agent status`, run as a person on the device would, beside a running daemon (from its
metrics) and beside a stopped one (from its usage file)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.config import load_config
from agent.daemon import Daemon
from agent.emulator.config import EmulatorConfig
from agent.emulator.server import Emulator
from agent.live.types import LiveUsageMetadata
from agent.systemd import Notifier
from agent.usage import UsageLedger

from .conftest import LAMP, emulator_config, free_port

T = 20.0


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(time_scale=0.1)) as running:
        yield running


def write_config(tmp_path: Path, endpoint: str, metrics: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(emulator_config(endpoint, f"""
{LAMP}

[metrics]
{metrics}

[usage]
file = "usage.json"

[usage.prices]
input_audio = 3.0
output_audio = 12.0

[budget]
daily_tokens = 1000000
""", audio_input="silence"))
    return path


async def status(path: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "status", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), T)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_status_reads_the_running_daemon(emulator: Emulator, tmp_path: Path) -> None:
    path = write_config(tmp_path, emulator.url, f'listen = "127.0.0.1:{free_port()}"')
    daemon = Daemon(load_config(path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(T):
            while daemon.parts is None or daemon.parts.session.state != "live":
                await asyncio.sleep(0.02)
            await daemon.parts.registry.call("lamp", {"action": "on"})
            await daemon.parts.session.send("what time is it")
            while daemon.usage.ledger.current().reports == 0:
                await asyncio.sleep(0.02)
        code, out = await status(path)
    finally:
        daemon.stop()
        assert await task == 0
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "session: live"
    assert any(line.startswith("connections 1,") for line in lines), out
    assert "tool calls: lamp ok 1" in lines
    [today] = [line for line in lines if line.startswith("today: ")]
    assert "input audio" in today and "USD" in today
    assert any(line.startswith("budget: ") for line in lines), out


async def test_a_stopped_service_shows_todays_usage_from_its_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:9", f'listen = "127.0.0.1:{free_port()}"')
    ledger = UsageLedger(tmp_path / "usage.json")
    ledger.record(LiveUsageMetadata(prompt_token_count=1_000_000, details={
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 1_000_000}]}))
    ledger.save()
    code, out = await status(path)
    assert code == 3, out
    lines = out.splitlines()
    assert lines[0].startswith("service: no answer at 127.0.0.1:")
    assert lines[1:] == [
        f"usage file: {tmp_path / 'usage.json'}",
        "today: 1,000,000 tokens (input audio 1,000,000), about 3.0000 USD",
        "budget: 100% of today's used; used up: no conversations until tomorrow",
    ]
