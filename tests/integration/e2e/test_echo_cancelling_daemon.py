"""`edge-agent run` in a simulated room: its speaker's sound comes back to its mic through a
room impulse response, and the emulator's own speech detection hears what the daemon sends.
With `echo = "aec"` the person's voice interrupts the model within a second and the model's
own voice interrupts none of its replies; with `echo = "none"` the same room makes the model
interrupt itself (the room's echo is real)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.emulator.server import Emulator
from tests.support.barge_in import emulator_config, run_room

pytest.importorskip("pywebrtc_audio")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config()) as running:
        yield running


async def test_with_aec_the_person_barges_in_and_the_model_does_not_hear_itself(
        emulator: Emulator, tmp_path: Path) -> None:
    outcome = await run_room(emulator, tmp_path, "aec", "qbqbqq")
    assert outcome.room is not None and outcome.room.underruns == 0
    print(f"\naec: {outcome.self_interrupted}/{outcome.quiet + outcome.barge_ins} replies cut "
          f"by their own voice; barge-ins after {outcome.barge_latencies} s")
    assert outcome.no_reply == 0
    assert outcome.self_interrupted == 0
    assert outcome.barge_ins == 2 and outcome.barge_detected == 2, outcome.barge_latencies
    assert not [e for e in outcome.logs if e.get("level") == "error"]


async def test_without_cancelling_the_same_room_makes_the_model_interrupt_itself(
        emulator: Emulator, tmp_path: Path) -> None:
    outcome = await run_room(emulator, tmp_path, "none", "qqq")
    print(f"\nnone: {outcome.self_interrupted}/{outcome.quiet} replies cut by their own voice")
    assert outcome.self_interrupted >= 2
