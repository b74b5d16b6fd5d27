"""`edge-agent run` listening for a wake word: the real daemon reads the recordings through
PyAudio from the virtual ALSA mic and talks to the emulator. The emulator's recording shows
that no audio from before the phrase left the device, that a conversation follows the phrase and
ends after the timeout, and that the camera sent frames only during it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support import wake_audio as wa
from tests.support.daemon_process import start_agent, stop_agent

CHUNK = 1280  # 40 ms of 16 kHz mono S16: the capture's read size


def config_text(endpoint: str, mode: str) -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "vmic"
dc_block = false                      # the samples the emulator gets are the file's
echo = "none"

[audio.output]
device = "null"

[listen]
mode = "{mode}"
wake_words = ["okay_nabu", "hey_jarvis"]
pre_roll_ms = 200
conversation_timeout_s = 2.0

[camera]
source = "test-pattern"
interval_s = 0.25

[gpio]
pin_factory = "mock"

[logging]
level = "info"
format = "json"
"""


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    scenario = Scenario.from_mapping({"name": "wake", "default_reply": "Yes?"})
    async with Emulator(EmulatorConfig(time_scale=0.3, scenario=scenario)) as running:
        yield running


def room(seconds_before: float) -> tuple[np.ndarray, int, int]:
    """Speech without the wake word, the phrase, a short command, then more speech after the
    conversation: (signal, phrase start, phrase end) in samples."""
    before = np.concatenate([wa.speech()[: int(seconds_before * wa.RATE)], wa.silence(0.5)])
    phrase = wa.recording("okay_nabu_2")
    command = wa.speech()[8 * wa.RATE : 10 * wa.RATE]
    after = np.concatenate([wa.silence(5.0), wa.speech()[: 4 * wa.RATE], wa.silence(1.0)])
    signal = wa.with_noise(np.concatenate([before, phrase, command, after]), 40)
    return signal, len(before), len(before) + len(phrase)


async def run_daemon(emulator: Emulator, tmp_path: Path, mode: str, feed: bytes
                     ) -> tuple[list[str], list[dict]]:  # type: ignore[type-arg]
    devices = wa.DaemonMic(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(config_text(emulator.url, mode))
    agent = await start_agent(config, tmp_path, pass_fds=devices.fds, **devices.env)
    try:
        await agent.wait_for(lambda: any("READY=1" in n for _, n in agent.notes), "READY=1")
        await agent.wait_for(lambda: emulator.recordings.sessions, "a session")
        devices.mic.play(feed, block_bytes=CHUNK, bytes_per_second=2 * wa.RATE)
        await asyncio.to_thread(devices.mic.wait, 60.0)
        await asyncio.sleep(0.5)
    finally:
        code = await stop_agent(agent)
        devices.close()
    assert code == 0
    return [n for _, n in agent.notes if "STATUS=" in n], agent.logs


async def test_no_audio_leaves_before_the_wake_word(emulator: Emulator, tmp_path: Path) -> None:
    signal, phrase_start, phrase_end = room(6.0)
    feed = wa.pcm(signal)
    statuses, logs = await run_daemon(emulator, tmp_path, "wake_word", feed)
    session = emulator.recordings.session()
    received = session.audio_samples()
    fed = np.frombuffer(feed, "<i2")
    assert len(received) > 0, "the conversation after the phrase reached the service"
    # What the service got is one stretch of what the mic heard, found by its first 40 ms.
    head = received[:640]
    offsets = [i for i in range(0, len(fed) - 640, 640) if np.array_equal(fed[i : i + 640], head)]
    assert len(offsets) == 1, "the first chunk sent is a chunk of the feed"
    first = offsets[0]
    assert first >= phrase_start, (
        f"audio from {(phrase_start - first) / wa.RATE:.2f} s before the phrase was sent")
    assert first <= phrase_end, "the pre-roll reaches back into the phrase"
    assert np.array_equal(received, fed[first : first + len(received)]), "nothing else was sent"
    # The conversation ended after the timeout: the speech after it stayed on the device.
    assert first + len(received) < len(fed) - 4 * wa.RATE
    wakes = [e for e in logs if e.get("event") == "conversation.wake"]
    assert [w["wake_word"] for w in wakes] == ["okay_nabu"]
    assert [e["reason"] for e in logs if e.get("event") == "conversation.sleep"] == ["timeout"]
    # Frames only while the conversation was open.
    assert session.video, "frames during the conversation"
    audio_times = [c.t for c in session.audio]
    assert min(f.t for f in session.video) >= min(audio_times) - 0.3
    assert any("waiting for the wake word (okay_nabu, hey_jarvis)" in s for s in statuses)
    assert any("in a conversation" in s for s in statuses)
    print(f"\nwake_word mode: {2 * len(received)} audio bytes sent of {len(feed)} heard")


async def test_always_mode_sends_everything(emulator: Emulator, tmp_path: Path) -> None:
    signal, _, _ = room(3.0)
    feed = wa.pcm(signal)
    statuses, logs = await run_daemon(emulator, tmp_path, "always", feed)
    received = emulator.recordings.session().audio_samples()
    assert 2 * len(received) > 0.9 * len(feed)
    assert not [e for e in logs if e.get("event") == "conversation.wake"]
    assert any("listening;" in s for s in statuses)
