"""Tool-call latency: from a decoded toolCall to the pin set and the response payload built.

Ours: ``ToolRegistry.call`` (schema validation, rate limiter, worker-thread hop with a
timeout, the pin write, the ``tool.actuated`` audit event rendered as JSON) plus building the
functionResponse, on gpiozero mock pins. Baselines, in the same run and on the same pins:
calling the gpiozero device method directly (the floor), and the same call hopped through
``asyncio.to_thread`` (what any thread hop costs). The socket part is not included yet.
Goal: p99 under 5 ms here.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import uvloop
from gpiozero import AngularServo, DigitalOutputDevice, PWMOutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin

from agent.config.gpio import parse_tools
from agent.tools.registry import ToolRegistry

CALLS = 2000
WARMUP = 200
GOAL_P99_MS = 5.0

TOOLS = [
    {"name": "porch_light", "description": "Porch light.", "kind": "digital_output",
     "pin": 17, "rate_limit": False},
    {"name": "fan", "description": "Fan speed.", "kind": "pwm", "pin": 12, "rate_limit": False},
    {"name": "pan", "description": "Camera pan.", "kind": "servo", "pin": 13,
     "rate_limit": False},
    {"name": "mood", "description": "Mood light.", "kind": "rgb_led",
     "pins": {"red": 9, "green": 10, "blue": 11}, "rate_limit": False},
]


def baseline_devices(factory: MockFactory) -> dict[str, list[Any]]:
    """The same gpiozero device classes the handlers use, on spare pins of the same factory."""
    return {
        "porch_light": [DigitalOutputDevice(4, pin_factory=factory)],
        "fan": [PWMOutputDevice(5, pin_factory=factory)],
        "pan": [AngularServo(6, initial_angle=None, pin_factory=factory)],
        "mood": [PWMOutputDevice(p, pin_factory=factory) for p in (19, 20, 21)],
    }


def set_rgb(devices: list[Any], rgb: tuple[float, float, float]) -> None:
    for device, value in zip(devices, rgb, strict=True):
        device.value = value


# (tool, args of call i, the direct gpiozero equivalent on the baseline devices)
CASES: list[tuple[str, Callable[[int], dict[str, Any]], Callable[[list[Any], int], None]]] = [
    ("porch_light", lambda i: {"action": "toggle"}, lambda d, i: d[0].toggle()),
    ("fan", lambda i: {"value": (i % 100) / 100}, lambda d, i: setattr(d[0], "value",
                                                                        (i % 100) / 100)),
    ("pan", lambda i: {"angle": (i % 90) - 45}, lambda d, i: setattr(d[0], "angle",
                                                                      (i % 90) - 45)),
    ("mood", lambda i: {"colour": "orange" if i % 2 else "#0080ff"},
     lambda d, i: set_rgb(d, (1.0, 0.647, 0.0) if i % 2 else (0.0, 0.5, 1.0))),
]


def percentile(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1e6


async def timed(fn: Callable[[int], Awaitable[object]]) -> list[int]:
    for i in range(WARMUP):
        await fn(i)
    samples = []
    for i in range(CALLS):
        start = time.perf_counter_ns()
        await fn(i)
        samples.append(time.perf_counter_ns() - start)
    return samples


async def measure() -> list[tuple[str, list[int], list[int], list[int]]]:
    factory = MockFactory(pin_class=MockPWMPin)
    registry = ToolRegistry(parse_tools(TOOLS), factory)
    baselines = baseline_devices(factory)
    rows = []
    async with registry:
        for name, make_args, direct in CASES:
            devices = baselines[name]

            async def ours(i: int, name: str = name,
                           make_args: Callable[[int], dict[str, Any]] = make_args) -> object:
                # what the conversation does with one decoded functionCalls entry
                call: dict[str, Any] = {"id": f"call-{i}", "name": name, "args": make_args(i)}
                payload = await registry.call(call["name"], call["args"], call_id=call["id"],
                                              session="bench")
                assert "result" in payload, payload
                return {"id": call["id"], "name": call["name"], "response": payload}

            async def baseline(i: int, devices: list[Any] = devices,
                               direct: Callable[[list[Any], int], None] = direct) -> None:
                direct(devices, i)

            async def hop(i: int, devices: list[Any] = devices,
                          direct: Callable[[list[Any], int], None] = direct) -> None:
                await asyncio.to_thread(direct, devices, i)

            rows.append((name, await timed(ours), await timed(baseline), await timed(hop)))
        # the calls really reached the pins: the last colour was orange
        assert registry.describe_pins()["mood"]["pins"]["GPIO9"] == 1.0
    for devices in baselines.values():
        for device in devices:
            device.close()
    factory.close()
    return rows


def run(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> list[Any]:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(measure())


def test_tool_call_latency() -> None:
    # Audit events rendered to JSON as in production, written nowhere.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(devnull),
    )
    try:
        results = [("uvloop", run(uvloop.new_event_loop)),
                   ("asyncio", run(asyncio.new_event_loop))]
    finally:
        structlog.reset_defaults()
        devnull.close()
    print(f"\n\nTool call -> pin set -> response payload, {CALLS} calls each on mock pins "
          "(milliseconds)")
    print(f"{'loop':<8}{'tool':<13}{'ours p50':>9}{'p99':>8}{'direct p50':>11}{'p99':>8}"
          f"{'to_thread p50':>14}{'p99':>8}{'ours/direct p50':>16}{'ours/to_thread p50':>19}"
          f"{'p99<5ms':>8}")
    worst = 0.0
    for loop_name, rows in results:
        for name, ours, direct, hop in rows:
            o50, o99 = percentile(ours, 0.5), percentile(ours, 0.99)
            d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
            h50, h99 = percentile(hop, 0.5), percentile(hop, 0.99)
            worst = max(worst, o99)
            print(f"{loop_name:<8}{name:<13}{o50:>9.3f}{o99:>8.3f}{d50:>11.4f}{d99:>8.4f}"
                  f"{h50:>14.3f}{h99:>8.3f}{o50 / d50:>15.0f}x{o50 / h50:>18.1f}x"
                  f"{'yes' if o99 < GOAL_P99_MS else 'NO':>8}")
    mean_ours = statistics.mean(percentile(r[1], 0.5) for _, rows in results for r in rows)
    print(f"worst p99 {worst:.3f} ms (goal < {GOAL_P99_MS:g} ms: "
          f"{'met' if worst < GOAL_P99_MS else 'NOT met'}); mean p50 {mean_ours:.3f} ms")


if __name__ == "__main__":
    test_tool_call_latency()
