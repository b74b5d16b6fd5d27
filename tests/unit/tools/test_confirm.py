"""Confirmation before acting: the first call moves nothing, a confirming call with the same
arguments within the window acts, and the audit log shows both steps."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from agent.config import ConfigError
from agent.config.gpio import parse_tools
from agent.tools.spec import StatusGpioSpec

GARAGE = {"name": "garage_door", "description": "Open or close the garage door.",
          "kind": "digital_output", "pin": 17, "confirm": True, "confirm_window_s": 20}


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


async def test_nothing_moves_until_the_same_call_comes_again(
    build: Any, level: Any, clock: list[float]
) -> None:
    registry = await build([GARAGE], clock=lambda: clock[0])
    with structlog.testing.capture_logs() as logs:
        first = await registry.call("garage_door", {"action": "on"}, call_id="c1")
        assert level(17) == 0.0
        assert "needs the user's confirmation" in first["result"]
        assert "within 20 s" in first["result"]
        clock[0] += 6  # the model asked, the user said yes
        second = await registry.call("garage_door", {"action": "on"}, call_id="c2")
    assert "error" not in second
    assert level(17) == 1.0
    audit = [(e["call_id"], e["outcome"]) for e in logs if e["event"] == "tool.actuated"]
    assert audit == [("c1", "awaiting_confirmation"), ("c2", "confirmed")]


async def test_other_arguments_ask_again(build: Any, level: Any, clock: list[float]) -> None:
    registry = await build([GARAGE], clock=lambda: clock[0])
    await registry.call("garage_door", {"action": "on"})
    clock[0] += 5
    again = await registry.call("garage_door", {"action": "toggle"})
    assert "needs the user's confirmation" in again["result"]
    clock[0] += 5
    await registry.call("garage_door", {"action": "toggle"})
    assert level(17) == 1.0


async def test_nothing_moves_after_the_window(build: Any, level: Any, clock: list[float]) -> None:
    registry = await build([GARAGE], clock=lambda: clock[0])
    await registry.call("garage_door", {"action": "on"})
    clock[0] += 21
    late = await registry.call("garage_door", {"action": "on"})
    assert "needs the user's confirmation" in late["result"]  # a new request, not an action
    assert level(17) == 0.0


async def test_a_call_straight_after_the_request_is_not_a_confirmation(
    build: Any, level: Any, clock: list[float]
) -> None:
    registry = await build([GARAGE], clock=lambda: clock[0])
    await registry.call("garage_door", {"action": "on"})
    clock[0] += 0.2  # nobody can have been asked in 0.2 s
    hasty = await registry.call("garage_door", {"action": "on"})
    assert "ask the user and wait" in hasty["result"]
    assert level(17) == 0.0
    clock[0] += 3
    await registry.call("garage_door", {"action": "on"})  # the request still waits
    assert level(17) == 1.0


async def test_tools_without_confirm_act_at_once(build: Any, level: Any) -> None:
    plain = {k: v for k, v in GARAGE.items() if not k.startswith("confirm")}
    registry = await build([plain])
    assert level(17) == 0.0
    await registry.call("garage_door", {"action": "on"})
    assert level(17) == 1.0


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"confirm": "yes"}, "must be true or false"),
        ({"confirm_window_s": 1}, "must be between 5 and 600"),
        ({"confirm": False}, "applies only with confirm = true"),
    ],
)
def test_confirm_keys_are_checked(table: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools([{**GARAGE, **table}])
    [problem] = info.value.problems
    assert problem.key.startswith("tools[0].confirm")
    assert fragment in problem.message


async def test_the_confirm_button_carries_out_the_waiting_request(
    build: Any, level: Any, mock_factory: Any, wait_until: Any, clock: list[float]
) -> None:
    status = StatusGpioSpec(confirm_button=16)
    registry = await build([GARAGE], status=status, clock=lambda: clock[0])
    heard: list[tuple[str, Any]] = []
    registry.on_confirmed(lambda tool, payload: heard.append((tool, payload)))
    with structlog.testing.capture_logs() as logs:
        first = await registry.call("garage_door", {"action": "on"}, call_id="c1")
        assert "press the confirm button" in first["result"]
        clock[0] += 4
        mock_factory.pin(16).drive_low()  # pulled up: pressed connects it to ground
        await wait_until(lambda: bool(heard))
        mock_factory.pin(16).drive_high()
    assert level(17) == 1.0
    [(tool, payload)] = heard
    assert tool == "garage_door"
    assert "result" in payload and "error" not in payload
    audit = [(e.get("call_id"), e["outcome"], e.get("confirmed_by"))
             for e in logs if e["event"] == "tool.actuated"]
    assert audit == [("c1", "awaiting_confirmation", None), (None, "confirmed", "button")]


async def test_the_confirm_button_with_nothing_waiting_moves_nothing(
    build: Any, level: Any, mock_factory: Any, clock: list[float]
) -> None:
    registry = await build([GARAGE], status=StatusGpioSpec(confirm_button=16),
                           clock=lambda: clock[0])
    await registry.call("garage_door", {"action": "on"})
    clock[0] += 25  # past the 20 s window
    assert await registry.confirm_by_button() is None
    assert level(17) == 0.0
