"""The emulator the agent starts itself (backend "emulator" with no endpoint) runs as long as
the agent does: it records nothing and holds a small device's limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.config import parse_config
from agent.daemon import Daemon
from agent.systemd import Notifier

CONFIG = """
[live]
backend = "emulator"

[audio]
input = "tone:300"
echo = "none"

[audio.output]
device = "null"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[health]
watchdog = false
"""


async def test_the_agents_own_emulator_records_nothing(tmp_path: Path) -> None:
    daemon = Daemon(parse_config(CONFIG, base_dir=tmp_path), notifier=Notifier(""))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(10):
            while daemon.parts is None or daemon.parts.emulator is None:
                await asyncio.sleep(0.02)
            emulator = daemon.parts.emulator
            while emulator.stats.audio_frames < 25:
                await asyncio.sleep(0.02)
        rec = emulator.recordings.connection(1)
        assert rec.received == [] and rec.audio == [] and rec.sent == []
        assert rec.messages > 25 and rec.bytes == 0 and emulator.recordings.bytes == 0
        assert not emulator.stats.frame_times
        limits = emulator.config.limits
        assert limits.max_connections <= 8 and limits.max_sessions <= 8
        assert emulator.config.max_message_bytes <= 2 * 1024 * 1024
    finally:
        daemon.stop()
        await task
