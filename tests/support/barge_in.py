"""Replies and barge-ins of the real daemon in a :class:`~tests.support.room.VirtualRoom`,
against the emulator's own speech detection.

A person says a command; the emulator answers with its synthetic voice, which the daemon plays
into the room, where its echo reaches the mic. A *quiet* reply is left to finish: if the
emulator is interrupted meanwhile, the model interrupted itself (its voice came back as
speech). A *barge-in* reply gets the person talking over it one second in: the emulator must
be interrupted, and how long after the first sample of that speech reached the mic is
measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support import wake_audio as wa
from tests.support.daemon_process import start_agent, stop_agent
from tests.support.room import VirtualRoom

REPLY = "Here is a reply long enough to talk over, about three seconds."  # ~3.4 s of voice
UTTERANCES = ((0.45, 1.45), (5.2, 7.0), (10.7, 11.9))  # seconds of the demo's speech WAV


def utterance(k: int) -> np.ndarray:
    start, end = UTTERANCES[k % len(UTTERANCES)]
    return wa.speech()[round(start * wa.RATE) : round(end * wa.RATE)] * 0.8


def emulator_config() -> EmulatorConfig:
    scenario = Scenario.from_mapping({"name": "room", "default_reply": REPLY})
    return EmulatorConfig(scenario=scenario)


def config_text(endpoint: str, echo: str, extra: str = "") -> str:
    return f"""
[live]
backend = "emulator"
endpoint = "{endpoint}"

[audio]
input = "vmic"
echo = "{echo}"
{extra}

[audio.output]
device = "vspk"

[listen]
mode = "always"

[camera]
enabled = false

[gpio]
pin_factory = "mock"

[health]
watchdog = false

[logging]
level = "info"
format = "json"
"""


@dataclass
class Outcome:
    quiet: int = 0  # quiet replies played
    self_interrupted: int = 0  # quiet replies the model's own voice cut short
    barge_ins: int = 0  # replies talked over
    barge_latencies: list[float] = field(default_factory=list)  # s; inf: never interrupted
    no_reply: int = 0  # turns the speaker stayed silent after, for 10 s
    logs: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    room: VirtualRoom | None = None

    @property
    def barge_detected(self) -> int:
        return sum(1 for t in self.barge_latencies if t <= 1.0)


async def _wait(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@contextlib.contextmanager
def ahead_of_other_work(priority: int = 10) -> Iterator[None]:
    """Run this thread, and the threads and processes it starts meanwhile, ahead of the
    machine's other work (when allowed: root): real-time round-robin, which wins over every
    ordinary task, whatever session (autogroup) it belongs to; a nice value counts only within
    the session. The room stands in for a sound card, whose clock does not stall when a build
    runs beside it; a stalled room plays gaps the daemon's reference never saw, which would
    measure the machine, not the canceller."""
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except OSError:  # not root: as it is
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


async def run_room(emulator: Emulator, tmp: Path, echo: str, plan: str,
                   extra: str = "") -> Outcome:
    """Run the daemon with ``echo`` through ``plan``: one letter per reply, ``q`` quiet, ``b``
    barged in on. The room's thread and the daemon start ahead of other work."""
    with ahead_of_other_work():
        return await _run_room(emulator, tmp, echo, plan, extra)


async def _run_room(emulator: Emulator, tmp: Path, echo: str, plan: str, extra: str) -> Outcome:
    room = VirtualRoom(tmp)
    config = tmp / "agent.toml"
    config.write_text(config_text(emulator.url, echo, extra))
    room.start()
    agent = await start_agent(config, tmp, pass_fds=room.fds, **room.env)
    stats = emulator.stats
    outcome = Outcome()
    try:
        await agent.wait_for(lambda: any("READY=1" in n for _, n in agent.notes), "READY=1")
        await agent.wait_for(lambda: emulator.recordings.sessions, "a session")
        await asyncio.sleep(1.5)  # the canceller settles on the room's noise
        turn = 0
        say_next = True
        for kind in plan:
            if say_next:
                room.say(utterance(turn))
                turn += 1
            say_next = True
            replies, cuts = stats.replies, stats.interruptions
            if not await _wait(lambda: room.speaker_sounds, 10.0):
                outcome.no_reply += 1  # counted; the person speaks again
                continue
            if kind == "q":
                outcome.quiet += 1
                await _wait(lambda r=replies, c=cuts: stats.replies > r or stats.interruptions > c,
                            10.0)  # fmt: skip
                await _wait(lambda: not room.speaker_sounds, 3.0)
                if stats.interruptions > cuts:
                    outcome.self_interrupted += 1
                    # the echo that cut it short is taken for a turn: let that reply be the next
                    await asyncio.sleep(1.0)
                    say_next = False
                    continue
                await asyncio.sleep(0.3)
            else:
                outcome.barge_ins += 1
                await asyncio.sleep(1.0)
                if stats.interruptions > cuts:  # cut short before the person spoke
                    outcome.self_interrupted += 1
                    cuts = stats.interruptions
                started = room.say(utterance(turn))
                turn += 1
                cut = await _wait(lambda c=cuts: stats.interruptions > c, 5.0)
                if cut and started:
                    outcome.barge_latencies.append(time.monotonic() - started[0])
                else:
                    outcome.barge_latencies.append(float("inf"))
                # the person's words end a turn: its reply is the next one
                await _wait(lambda: not room.speaker_sounds, 3.0)
                say_next = False
    finally:
        code = await stop_agent(agent)
        room.close()
        outcome.logs = agent.logs
        outcome.room = room
    assert code == 0
    return outcome
