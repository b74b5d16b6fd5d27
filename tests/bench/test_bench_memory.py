"""Memory across restarts: `edge-agent run` stopped and started again against the emulator,
with the handle still honoured and with it expired. The emulator's model answers the second
run's user from its session memory, so the reply shows what the service remembers."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from agent.emulator.config import EmulatorConfig
from agent.emulator.scenario import Scenario
from agent.emulator.server import Emulator
from tests.support.restart import SCENARIO, one_run, replies, saved, state_folder


async def restart(handle_ttl_s: float) -> tuple[bool, bool, float, int]:
    """(resumed, the reply quotes the first run's words, restart -> live s, file bytes)."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        state = state_folder(tmp)
        config = EmulatorConfig(time_scale=0.3, handle_ttl_s=handle_ttl_s,
                                scenario=Scenario.from_mapping(SCENARIO))
        async with Emulator(config) as emulator:
            await one_run(emulator, tmp, state, 1)
            _, live_after = await one_run(emulator, tmp, state, 2)
            resumed = emulator.stats.resumed == 1
            remembers = replies(emulator)[-1].endswith("Before that: my name is Ada.")
        assert saved(state)["handle"]
        size = (state / "conversation.json").stat().st_size
    return resumed, remembers, live_after, size


def test_memory_across_restarts() -> None:
    kept = asyncio.run(restart(7_200.0))
    expired = asyncio.run(restart(1.0))
    print("\n\nMemory across a daemon restart (edge-agent run, emulator on loopback)")
    print(f"{'measure':<62}{'value':>12}{'goal':>10}{'met':>6}")
    rows = [
        ("handle honoured: resumed the same session", kept[0], True),
        ("handle honoured: the reply remembers the last turn", kept[1], True),
        ("handle expired: a fresh session, seeded", not expired[0], True),
        ("handle expired: the reply remembers the last turn", expired[1], True),
    ]
    for name, value, goal in rows:
        shown = "yes" if value else "no"
        print(f"{name:<62}{shown:>12}{'yes':>10}{'yes' if value == goal else 'NO':>6}")
    print(f"{'start -> session live, resumed (s)':<62}{kept[2]:>12.2f}{'report':>10}")
    print(f"{'start -> session live, refused handle then seeded (s)':<62}{expired[2]:>12.2f}"
          f"{'report':>10}")
    print(f"{'memory file (bytes, one exchange)':<62}{kept[3]:>12}{'report':>10}")
    assert kept[:2] == (True, True) and expired[:2] == (False, True)
