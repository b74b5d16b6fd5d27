"""The agent's own GPIO: status LEDs and the mute / push-to-talk buttons on mock pins."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from structlog.testing import capture_logs

from agent.config.gpio import parse_status_gpio, parse_tools
from agent.tools.errors import ToolSetupError
from agent.tools.registry import ToolRegistry
from agent.tools.spec import StatusGpioSpec
from agent.tools.status import ButtonEvent, ControlButtons

STATUS = parse_status_gpio({"leds": {"connected": 5, "listening": 6, "error": 19},
                            "mute_button": 20, "push_to_talk_button": 21})


async def next_event(buttons: ControlButtons) -> ButtonEvent:
    return await asyncio.wait_for(anext(aiter(buttons.events())), 2.0)


async def test_status_leds_by_state_name(build: Any, level: Any) -> None:
    registry = await build([], status=STATUS)
    leds = registry.indicators
    assert (level(5), level(6), level(19)) == (0.0, 0.0, 0.0)
    leds.set("connected", True)
    leds.set("speaking", True)  # no LED configured for it: ignored
    assert (level(5), level(6), level(19)) == (1.0, 0.0, 0.0)
    leds.show("listening", "error")
    assert (level(5), level(6), level(19)) == (0.0, 1.0, 1.0)
    assert leds.states() == {"connected": False, "listening": True, "error": True}
    assert registry.describe_pins()["status.error"] == {
        "kind": "status_led", "pins": {"GPIO19": 1.0}, "state": {"on": True}}
    with pytest.raises(ValueError, match="unknown status LED 'blinking'"):
        leds.set("blinking", True)


async def test_active_low_status_leds(build: Any, level: Any) -> None:
    registry = await build([], status=StatusGpioSpec(leds={"error": 19}, leds_active_low=True))
    assert level(19) == 1.0
    registry.indicators.set("error", True)
    assert level(19) == 0.0


async def test_mute_button_toggles_on_each_press(
        build: Any, mock_factory: MockFactory) -> None:
    registry = await build([], status=STATUS)
    buttons = registry.buttons
    pin = mock_factory.pin(20)
    seen: list[tuple[ButtonEvent, bool]] = []
    buttons.on_event(lambda e: seen.append((e, threading.current_thread() is
                                            threading.main_thread())))
    with capture_logs() as logs:
        pin.drive_low()  # press
        assert await next_event(buttons) == ButtonEvent("mute", True)
        assert buttons.muted
        pin.drive_high()  # release: nothing changes in toggle mode
        pin.drive_low()
        assert await next_event(buttons) == ButtonEvent("mute", False)
    assert not buttons.muted
    assert seen == [(ButtonEvent("mute", True), True), (ButtonEvent("mute", False), True)]
    assert [e["muted"] for e in logs if e["event"] == "gpio.mute"] == [True, False]


async def test_mute_switch_mutes_while_closed(mock_factory: MockFactory) -> None:
    spec = StatusGpioSpec(mute_button=20, mute_mode="switch")
    buttons = ControlButtons(spec, mock_factory)
    buttons.open(asyncio.get_running_loop())
    try:
        assert not buttons.muted  # the pull-up reads "open"
        mock_factory.pin(20).drive_low()
        assert await next_event(buttons) == ButtonEvent("mute", True)
        assert buttons.muted
        mock_factory.pin(20).drive_high()
        assert await next_event(buttons) == ButtonEvent("mute", False)
        assert not buttons.muted
    finally:
        buttons.close()


async def test_push_to_talk_from_gpiozero_threads_arrives_on_the_loop(
        build: Any, mock_factory: MockFactory) -> None:
    registry = await build([], status=STATUS)
    buttons = registry.buttons
    loop_thread: list[bool] = []
    buttons.on_event(lambda e: loop_thread.append(
        threading.current_thread() is threading.main_thread()))
    pin = mock_factory.pin(21)
    # gpiozero calls back on its own threads; simulate that edge from another thread
    worker = threading.Thread(target=pin.drive_low)
    worker.start()
    worker.join(2.0)
    assert await next_event(buttons) == ButtonEvent("push_to_talk", True)
    assert buttons.talking
    pin.drive_high()
    assert await next_event(buttons) == ButtonEvent("push_to_talk", False)
    assert loop_thread == [True, True]


async def test_a_slow_reader_gets_the_newest_events(mock_factory: MockFactory) -> None:
    buttons = ControlButtons(StatusGpioSpec(push_to_talk_button=21), mock_factory,
                             queue_size=2)
    buttons.open(asyncio.get_running_loop())
    pin = mock_factory.pin(21)
    try:
        for _ in range(3):
            pin.drive_low()
            pin.drive_high()
        await asyncio.sleep(0.01)  # let the loop take the edges
        assert await next_event(buttons) == ButtonEvent("push_to_talk", True)
        assert await next_event(buttons) == ButtonEvent("push_to_talk", False)
        with pytest.raises(TimeoutError):  # the oldest four were dropped
            await asyncio.wait_for(anext(aiter(buttons.events())), 0.05)
    finally:
        buttons.close()


async def test_close_switches_status_leds_off_and_releases_buttons(
        build: Any, mock_factory: MockFactory) -> None:
    registry = await build([], status=STATUS)
    registry.indicators.show("connected", "error")
    registry.close()
    assert not mock_factory.pin(5).state
    assert not mock_factory.pin(19).state
    assert not mock_factory.pin(20).when_changed  # no more button callbacks


def test_status_pins_cannot_clash_with_tool_pins(mock_factory: MockFactory) -> None:
    tools = parse_tools([{"name": "x", "description": "X.", "kind": "digital_output",
                          "pin": 21}])
    with pytest.raises(ToolSetupError) as info:
        ToolRegistry(tools, mock_factory, status=STATUS)
    assert str(info.value).startswith("gpio.status.push_to_talk_button: ")
