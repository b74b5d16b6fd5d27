"""Dispatch and safety: invalid calls move nothing, timeouts, cancellation, rate limits,
safe states on close and after a disconnect, custom entry points, audit events."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from structlog.testing import capture_logs

from agent.config import ConfigError
from agent.config.gpio import parse_tools
from agent.tools.errors import GpioError, ToolSetupError
from agent.tools.registry import ToolRegistry

LIGHT = {"name": "porch_light", "description": "Porch light.", "kind": "digital_output",
         "pin": 17}
GARAGE = {"name": "garage", "description": "Garage door button.", "kind": "pulse", "pin": 18,
          "max_duration_s": 5.0}
PAN = {"name": "pan", "description": "Camera pan.", "kind": "servo", "pin": 13,
       "limits": [-45, 45]}


# ------------------------------------------------------------------ rejected calls


@pytest.mark.parametrize(
    ("tool", "args", "fragment"),
    [
        ("porch_light", {"action": 1}, "'action' must be one of \"on\", \"off\", \"toggle\""),
        ("porch_light", {"action": "dim"}, "(got \"dim\")"),
        ("porch_light", {}, "missing required argument 'action'"),
        ("porch_light", {"action": "on", "level": 3}, "unexpected argument 'level'"),
        ("porch_light", ["on"], "arguments must be an object"),
        ("pan", {"angle": 90}, "'angle' must be a number from -45 to 45 (got 90)"),
        ("pan", {"angle": "left"}, "'angle' must be a number from -45 to 45 (got \"left\")"),
        ("pan", {"angle": True}, "'angle' must be a number"),
        ("pan", {"angle": float("nan")}, "'angle' must be a number"),
        ("garage", {"duration_s": 60}, "'duration_s' must be a number from 0.05 to 5"),
    ],
)
async def test_invalid_arguments_are_answered_and_move_nothing(
        build: Any, mock_factory: MockFactory, tool: str, args: Any, fragment: str) -> None:
    registry = await build([LIGHT, GARAGE, PAN])
    for gpio in (17, 18, 13):
        mock_factory.pin(gpio).clear_states()
    response = await registry.call(tool, args)
    assert set(response) == {"error"}
    assert fragment in response["error"]
    assert "Nothing was changed" in response["error"]
    for gpio in (17, 18, 13):
        assert len(mock_factory.pin(gpio).states) == 1  # no transition at all


async def test_unknown_function_names_the_available_ones(build: Any) -> None:
    registry = await build([LIGHT, PAN])
    response = await registry.call("open_pod_bay_doors", {})
    assert response == {"error": "there is no function named 'open_pod_bay_doors'; the "
                                 "available functions are: porch_light, pan"}


async def test_integral_float_is_accepted_for_an_integer_parameter(
        build: Any, custom_module: Any) -> None:
    mod = custom_module("def handler(args, ctx):\n    return {'got': args['n']}\n")
    registry = await build([{
        "name": "count", "description": "Count.", "kind": "custom", "handler": f"{mod}:handler",
        "parameters": {"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3}}, "required": ["n"]}}])
    assert await registry.call("count", {"n": 2.0}) == {"result": {"got": 2}}
    response = await registry.call("count", {"n": 2.5})
    assert "'n' must be a whole number" in response["error"]


async def test_call_after_close_is_an_error_not_an_exception(build: Any) -> None:
    registry = await build([LIGHT])
    registry.close()
    response = await registry.call("porch_light", {"action": "on"})
    assert "shut down" in response["error"]


# ------------------------------------------------------------------ timeouts, cancellation


async def test_cancellation_mid_pulse_releases_the_relay_and_propagates(
        build: Any, mock_factory: MockFactory, wait_until: Any) -> None:
    registry = await build([GARAGE])
    pin = mock_factory.pin(18)
    with capture_logs() as logs:
        task = asyncio.create_task(registry.call("garage", {"duration_s": 5}, call_id="c-9"))
        await wait_until(lambda: pin.state)  # the relay is pulled in
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)  # far less than the 5 s pulse
    assert task in done
    assert task.cancelled()
    assert not pin.state
    audit = [e for e in logs if e["event"] == "tool.actuated"]
    assert audit[0]["outcome"] == "cancelled"
    assert audit[0]["call_id"] == "c-9"
    # the tool is free again at once
    assert "result" in await registry.call("garage", {"duration_s": 0.05})


async def test_handler_timeout_stops_it_and_restores_the_safe_state(
        build: Any, custom_module: Any) -> None:
    mod = custom_module("""
        events = []

        def slow(args, ctx):
            events.append("start")
            finished = ctx.sleep(10)
            events.append("finished" if finished else "stopped")
            return "late"

        def safe(ctx):
            events.append("safe")
    """)
    registry = await build([{"name": "slow", "description": "Slow.", "kind": "custom",
                             "handler": f"{mod}:slow", "safe_handler": f"{mod}:safe",
                             "timeout_s": 0.1}])
    events = importlib.import_module(mod).events
    events.clear()  # the claim does not call the safe handler, but be explicit
    response = await asyncio.wait_for(registry.call("slow", {}), 2.0)
    assert response == {"error": "slow did not finish within 0.1 s and was stopped; its "
                                 "outputs are back in their safe state"}
    assert events == ["start", "stopped", "safe"]


async def test_a_handler_that_ignores_cancel_keeps_the_tool_busy_until_it_ends(
        build: Any, custom_module: Any, wait_until: Any) -> None:
    mod = custom_module("""
        import threading
        release = threading.Event()
        events = []

        def stuck(args, ctx):
            release.wait(5)  # ignores ctx.cancel
            events.append("ended")

        def safe(ctx):
            events.append("safe")
    """)
    registry = await build([{"name": "stuck", "description": "Stuck.", "kind": "custom",
                             "handler": f"{mod}:stuck", "safe_handler": f"{mod}:safe",
                             "timeout_s": 0.05}], cancel_grace_s=0.05)
    module = importlib.import_module(mod)
    with capture_logs() as logs:
        response = await asyncio.wait_for(registry.call("stuck", {}), 2.0)
    assert "did not finish within 0.05 s" in response["error"]
    assert module.events == ["safe"]  # forced safe although the handler still runs
    assert any(e["event"] == "tool.handler_stuck" for e in logs)
    busy = await registry.call("stuck", {})
    assert "still carrying out an earlier call" in busy["error"]
    module.release.set()
    await wait_until(lambda: module.events == ["safe", "ended", "safe"])


async def test_handler_exception_becomes_an_error_payload_and_safe_state(
        build: Any, custom_module: Any) -> None:
    mod = custom_module("""
        from agent.tools import ToolError
        safe_calls = []

        def broken(args, ctx):
            raise OSError(5, "I/O error on the bus")

        def refuses(args, ctx):
            raise ToolError("the window is already fully open")

        def safe(ctx):
            safe_calls.append(ctx.tool)
    """)
    registry = await build([
        {"name": "broken", "description": "Broken.", "kind": "custom",
         "handler": f"{mod}:broken", "safe_handler": f"{mod}:safe"},
        {"name": "refuses", "description": "Refuses.", "kind": "custom",
         "handler": f"{mod}:refuses", "safe_handler": f"{mod}:safe"},
    ])
    response = await registry.call("broken", {})
    assert response == {"error": "broken failed (OSError: [Errno 5] I/O error on the bus); "
                                 "its outputs are back in their safe state"}
    assert await registry.call("refuses", {}) == {
        "error": "refuses: the window is already fully open"}
    assert importlib.import_module(mod).safe_calls == ["broken", "refuses"]


async def test_a_handler_raising_timeouterror_is_a_failure_not_a_timeout(
        build: Any, custom_module: Any) -> None:
    mod = custom_module("def h(args, ctx):\n    raise TimeoutError('sensor did not answer')\n")
    registry = await build([{"name": "sensor", "description": "Sensor.", "kind": "custom",
                             "handler": f"{mod}:h"}])
    response = await registry.call("sensor", {})
    assert "TimeoutError: sensor did not answer" in response["error"]


async def test_non_json_result_is_reported(build: Any, custom_module: Any) -> None:
    mod = custom_module("def h(args, ctx):\n    return object()\n")
    registry = await build([{"name": "odd", "description": "Odd.", "kind": "custom",
                             "handler": f"{mod}:h"}])
    assert "not JSON" in (await registry.call("odd", {}))["error"]


async def test_second_call_while_the_first_runs_is_answered_busy(
        build: Any, mock_factory: MockFactory, wait_until: Any) -> None:
    registry = await build([GARAGE])
    first = asyncio.create_task(registry.call("garage", {"duration_s": 0.3}))
    await wait_until(lambda: mock_factory.pin(18).state)
    second = await registry.call("garage", {"duration_s": 0.1})
    assert "still carrying out an earlier call" in second["error"]
    assert "result" in await asyncio.wait_for(first, 2.0)


# ------------------------------------------------------------------ rate limits


async def test_rate_limit_per_tool_with_an_injected_clock(build: Any, level: Any) -> None:
    now = [1000.0]
    registry = await build(
        [{**LIGHT, "rate_limit": {"calls": 2, "per_s": 10}}, PAN], clock=lambda: now[0])
    assert "result" in await registry.call("porch_light", {"action": "on"})
    now[0] += 4
    assert "result" in await registry.call("porch_light", {"action": "off"})
    now[0] += 1
    limited = await registry.call("porch_light", {"action": "on"})
    assert limited == {"error": "rate limit: porch_light accepts at most 2 calls per 10 s; "
                                "nothing was changed, try again in 5.0 s"}
    assert level(17) == 0.0
    assert "result" in await registry.call("pan", {"angle": 10})  # limits are per tool
    now[0] += 5
    assert "result" in await registry.call("porch_light", {"action": "on"})


async def test_invalid_calls_do_not_use_up_the_rate_limit(build: Any) -> None:
    registry = await build([{**LIGHT, "rate_limit": {"calls": 1, "per_s": 60}}],
                           clock=lambda: 0.0)
    for _ in range(3):
        assert "error" in await registry.call("porch_light", {"action": "dim"})
    assert "result" in await registry.call("porch_light", {"action": "on"})


async def test_rate_limit_can_be_switched_off(build: Any) -> None:
    registry = await build([{**LIGHT, "rate_limit": False}], clock=lambda: 0.0)
    for _ in range(50):
        assert "result" in await registry.call("porch_light", {"action": "toggle"})


# ------------------------------------------------------------------ safe states


async def test_safe_all_and_close_restore_every_safe_state(
        build: Any, mock_factory: MockFactory, level: Any) -> None:
    registry = await build([LIGHT, {**LIGHT, "name": "heater", "pin": 27, "active_low": True},
                            {"name": "fan", "description": "Fan.", "kind": "pwm", "pin": 12,
                             "safe_state": 0.2}, PAN])

    async def drive_everything() -> None:
        await registry.call("porch_light", {"action": "on"})
        await registry.call("heater", {"action": "on"})
        await registry.call("fan", {"value": 1.0})
        await registry.call("pan", {"angle": 30})
        assert (level(17), level(27), level(12)) == (1.0, 0.0, 1.0)
        assert level(13) > 0

    safe_levels = {"GPIO17": 0.0, "GPIO27": 1.0, "GPIO12": 0.2, "GPIO13": 0.0}
    await drive_everything()
    registry.safe_all()
    assert {f"GPIO{n}": level(n) for n in (17, 27, 12, 13)} == safe_levels

    await drive_everything()
    seen: dict[str, float | None] = {}
    registry.on_change(lambda change: seen.update(change.levels))
    with capture_logs() as logs:
        registry.close()
    assert seen == safe_levels  # driven safe while still claimed...
    assert all(mock_factory.pin(n).function == "input" for n in (17, 27, 12, 13))  # ...released
    assert {"event": "tool.safe_all", "reason": "shutdown", "log_level": "info"} in logs
    registry.close()  # idempotent


async def test_close_stops_a_running_pulse(
        build: Any, mock_factory: MockFactory, wait_until: Any) -> None:
    registry = await build([GARAGE])
    task = asyncio.create_task(registry.call("garage", {"duration_s": 5}))
    await wait_until(lambda: mock_factory.pin(18).state)
    registry.close()
    assert not mock_factory.pin(18).state
    response = await asyncio.wait_for(task, 2.0)  # the handler saw the cancel event
    assert response["result"]["pulsed_s"] < 5


async def test_pins_go_safe_after_the_session_is_gone_too_long(
        build: Any, level: Any, wait_until: Any) -> None:
    registry = await build([LIGHT], safe_after_disconnect_s=0.05)
    registry.note_session_state(True)
    await registry.call("porch_light", {"action": "on"})
    with capture_logs() as logs:
        registry.note_session_state(False)
        await wait_until(lambda: level(17) == 0.0)
    assert any(e["event"] == "tool.safe_all" and e["reason"] == "session gone" for e in logs)


async def test_a_quick_reconnect_keeps_the_outputs(build: Any, level: Any) -> None:
    registry = await build([LIGHT], safe_after_disconnect_s=0.1)
    await registry.call("porch_light", {"action": "on"})
    registry.note_session_state(False)
    registry.note_session_state(True)  # resumed before the limit
    await asyncio.sleep(0.3)
    assert level(17) == 1.0


# ------------------------------------------------------------------ config and claim


async def test_pins_claimed_twice_are_a_config_error(mock_factory: MockFactory) -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools([LIGHT, {**GARAGE, "pin": 17}])
    assert [(p.key, p.message) for p in info.value.problems] == [
        ("tools[1].pin", "GPIO17 is already used by tools[0].pin; each pin can be claimed "
                         "once")]
    # specs built elsewhere are checked again by the registry before anything is claimed
    light, garage = parse_tools([LIGHT, GARAGE])
    clash = dataclasses.replace(garage, pins={"pin": 17})
    with pytest.raises(ToolSetupError, match=r"^tools\[1\]\.pin: GPIO17 is already used"):
        ToolRegistry([light, clash], mock_factory)
    assert not mock_factory.pins  # nothing was claimed


async def test_declarations_match_the_config(build: Any) -> None:
    registry = await build([
        {**LIGHT, "description": "Switch the porch light."},
        PAN,
        {"name": "front_door", "description": "Is the front door shut?",
         "kind": "digital_input", "pin": 22, "behavior": "NON_BLOCKING", "scheduling": "SILENT"},
    ])
    assert registry.declarations() == [
        {"name": "porch_light", "description": "Switch the porch light.",
         "parameters": {"type": "object", "properties": {"action": {
             "type": "string", "enum": ["on", "off", "toggle"],
             "description": "Switch it on, off, or to the opposite state."}},
             "required": ["action"]},
         "behavior": "BLOCKING"},  # always declared, the default included
        {"name": "pan", "description": "Camera pan.",
         "parameters": {"type": "object", "properties": {"angle": {
             "type": "number", "minimum": -45.0, "maximum": 45.0,
             "description": "Target angle in degrees, -45 to 45."}}, "required": ["angle"]},
         "behavior": "BLOCKING"},
        # no parameters at all: the API rejects an object schema without properties
        {"name": "front_door", "description": "Is the front door shut?",
         "behavior": "NON_BLOCKING"},
    ]
    assert [registry.scheduling(n) for n in ("porch_light", "front_door", "nope")] == [
        None, "SILENT", None]
    registry.declarations()[0]["parameters"]["required"].append("x")  # a copy each time
    assert registry.declarations()[0]["parameters"]["required"] == ["action"]


async def test_custom_entry_point_runs_with_its_declared_schema(
        build: Any, custom_module: Any) -> None:
    mod = custom_module("""
        import threading

        def greet(args, ctx):
            ctx.store["calls"] = ctx.store.get("calls", 0) + 1
            return {"text": f"hello {args['who']}", "calls": ctx.store["calls"],
                    "pins": list(ctx.pins),
                    "worker": threading.current_thread() is not threading.main_thread()}
    """)
    schema = {"type": "object", "properties": {"who": {"type": "string", "maxLength": 10}},
              "required": ["who"]}
    registry = await build([{"name": "greet", "description": "Greets.", "kind": "custom",
                             "handler": f"{mod}:greet", "parameters": schema, "pins": [5]}])
    assert registry.declarations() == [{"name": "greet", "description": "Greets.",
                                        "parameters": schema, "behavior": "BLOCKING"}]
    assert await registry.call("greet", {"who": "Ada"}) == {
        "result": {"text": "hello Ada", "calls": 1, "pins": [5], "worker": True}}
    assert (await registry.call("greet", {"who": "Ada"}))["result"]["calls"] == 2
    too_long = await registry.call("greet", {"who": "Bartholomew"})
    assert "'who' must have at most 10 characters" in too_long["error"]


async def test_custom_entry_point_problems_are_setup_errors(
        mock_factory: MockFactory, custom_module: Any) -> None:
    mod = custom_module("async def handler(args, ctx):\n    return 1\nVALUE = 3\n")
    for ref, fragment in [(f"{mod}:missing", "has no 'missing'"),
                          (f"{mod}:VALUE", "is not callable"),
                          (f"{mod}:handler", "is async"),
                          ("no_such_module_here:handler", "cannot import")]:
        registry = ToolRegistry(parse_tools([{"name": "x", "description": "X.",
                                              "kind": "custom", "handler": ref}]), mock_factory)
        with pytest.raises(ToolSetupError) as info:
            registry.open()
        assert str(info.value).startswith("tools[0].handler: ")
        assert fragment in str(info.value)


async def test_a_pin_that_cannot_be_claimed_is_a_clear_error(mock_factory: MockFactory) -> None:
    # GPIO2 has a fixed pull-up on the Pi: an input cannot pull it down
    registry = ToolRegistry(parse_tools([LIGHT, {"name": "btn", "description": "Button.",
                                                 "kind": "digital_input", "pin": 2,
                                                 "pull": "down"}]), mock_factory)
    with pytest.raises(GpioError, match=r"tools\[1\] \(btn\): cannot claim GPIO2"):
        registry.open()
    # what was claimed before the failure is released again
    assert mock_factory.pin(17).function == "input"


# ------------------------------------------------------------------ audit


async def test_every_call_is_audited(build: Any) -> None:
    registry = await build([LIGHT])
    with capture_logs() as logs:
        await registry.call("porch_light", {"action": "on"}, call_id="id-1", session="s-1")
        await registry.call("porch_light", {"action": "dim"}, call_id="id-2", session="s-1")
        await registry.call("nope", {"x": 1}, call_id="id-3", session="s-1")
    audit = [e for e in logs if e["event"] == "tool.actuated"]
    assert [(e["tool"], e["call_id"], e["session"], e["outcome"]) for e in audit] == [
        ("porch_light", "id-1", "s-1", "ok"),
        ("porch_light", "id-2", "s-1", "invalid"),
        ("nope", "id-3", "s-1", "unknown"),
    ]
    assert audit[0]["args"] == {"action": "on"}
    assert audit[0]["result"] == {"result": {"state": "on"}}
    assert "error" in audit[1]["result"]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in audit)

