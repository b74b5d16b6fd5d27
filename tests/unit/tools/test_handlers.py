"""Every handler kind on mock pins: the pin changes and the function response says so."""

from __future__ import annotations

from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

LIGHT = {"name": "porch_light", "description": "Porch light.", "kind": "digital_output",
         "pin": 17}


async def test_digital_output_on_off_toggle(build: Any, level: Any) -> None:
    registry = await build([LIGHT])
    assert level(17) == 0.0  # claimed in its safe state
    assert await registry.call("porch_light", {"action": "on"}) == {"result": {"state": "on"}}
    assert level(17) == 1.0
    assert await registry.call("porch_light", {"action": "toggle"}) == {
        "result": {"state": "off"}}
    assert level(17) == 0.0
    await registry.call("porch_light", {"action": "toggle"})
    assert level(17) == 1.0
    assert await registry.call("porch_light", {"action": "off"}) == {"result": {"state": "off"}}
    assert level(17) == 0.0


async def test_digital_output_active_low_inverts_the_pin(build: Any, level: Any) -> None:
    registry = await build([{**LIGHT, "active_low": True}])
    assert level(17) == 1.0  # off = high on an active-low relay board
    await registry.call("porch_light", {"action": "on"})
    assert level(17) == 0.0


async def test_digital_output_safe_state_on_is_applied_at_claim(build: Any, level: Any) -> None:
    registry = await build([{**LIGHT, "safe_state": "on"}])
    assert level(17) == 1.0
    await registry.call("porch_light", {"action": "off"})
    registry.safe_all()
    assert level(17) == 1.0


async def test_pulse_holds_for_the_duration_then_releases(
        build: Any, mock_factory: MockFactory, level: Any) -> None:
    registry = await build([{"name": "garage", "description": "Garage door button.",
                             "kind": "pulse", "pin": 18, "max_duration_s": 1.0}])
    pin = mock_factory.pin(18)
    pin.clear_states()
    response = await registry.call("garage", {"duration_s": 0.05})
    assert [s.state for s in pin.states] == [False, True, False]
    assert pin.states[2].timestamp == pytest.approx(0.05, abs=0.04)  # the held time
    assert 0.05 <= response["result"]["pulsed_s"] < 1.0
    assert level(18) == 0.0


async def test_pulse_uses_the_configured_default_duration(build: Any) -> None:
    registry = await build([{"name": "garage", "description": "Garage door button.",
                             "kind": "pulse", "pin": 18, "duration_s": 0.02,
                             "min_duration_s": 0.01}])
    response = await registry.call("garage", {})
    assert 0.02 <= response["result"]["pulsed_s"] < 0.5


async def test_pwm_sets_the_duty_cycle(build: Any, level: Any) -> None:
    registry = await build([{"name": "fan", "description": "Fan speed.", "kind": "pwm",
                             "pin": 12, "frequency_hz": 25000}])
    assert await registry.call("fan", {"value": 0.25}) == {"result": {"value": 0.25}}
    assert level(12) == 0.25
    await registry.call("fan", {"value": 1})
    assert level(12) == 1.0


async def test_servo_moves_to_the_angle_within_limits(
        build: Any, mock_factory: MockFactory, level: Any) -> None:
    registry = await build([{"name": "pan", "description": "Camera pan.", "kind": "servo",
                             "pin": 13, "limits": [-45, 45]}])
    assert level(13) == 0.0  # detached: no pulses
    assert await registry.call("pan", {"angle": 45}) == {"result": {"angle": 45.0}}
    # 45 deg on a -90..90 servo = 1.75 ms of a 20 ms frame
    assert level(13) == pytest.approx(1.75 / 20)
    assert mock_factory.pin(13).frequency == pytest.approx(50)
    assert registry.describe_pins()["pan"]["state"] == {"angle": 45.0}
    registry.safe_all()
    assert level(13) == 0.0


async def test_rgb_led_accepts_names_hex_and_triples(build: Any, level: Any) -> None:
    registry = await build([{"name": "mood", "description": "Mood light.", "kind": "rgb_led",
                             "pins": {"red": 9, "green": 10, "blue": 11}}])
    assert await registry.call("mood", {"colour": "orange"}) == {
        "result": {"colour": "#ffa500"}}
    assert (level(9), level(10), level(11)) == pytest.approx((1.0, 165 / 255, 0.0))
    await registry.call("mood", {"colour": "#0000FF"})
    assert (level(9), level(10), level(11)) == (0.0, 0.0, 1.0)
    await registry.call("mood", {"colour": "255, 0, 128"})
    assert (level(9), level(10), level(11)) == pytest.approx((1.0, 0.0, 128 / 255))
    await registry.call("mood", {"colour": "off"})
    assert (level(9), level(10), level(11)) == (0.0, 0.0, 0.0)


async def test_rgb_led_without_pwm_common_anode(build: Any, level: Any) -> None:
    registry = await build([{"name": "mood", "description": "Mood light.", "kind": "rgb_led",
                             "pins": {"red": 9, "green": 10, "blue": 11}, "pwm": False,
                             "active_low": True}])
    assert (level(9), level(10), level(11)) == (1.0, 1.0, 1.0)  # all off on common anode
    response = await registry.call("mood", {"colour": "orange"})
    assert response == {"result": {"colour": "#ffff00"}}  # each channel on or off
    assert (level(9), level(10), level(11)) == (0.0, 0.0, 1.0)


async def test_digital_input_reports_the_configured_labels(
        build: Any, mock_factory: MockFactory) -> None:
    registry = await build([{"name": "front_door", "description": "Is the front door shut?",
                             "kind": "digital_input", "pin": 22, "active_label": "closed",
                             "inactive_label": "open"}])
    assert await registry.call("front_door", {}) == {
        "result": {"state": "open", "active": False}}
    mock_factory.pin(22).drive_low()  # reed switch closes to ground
    assert await registry.call("front_door", None) == {
        "result": {"state": "closed", "active": True}}


async def test_pir_with_pull_down_is_active_high(build: Any, mock_factory: MockFactory) -> None:
    registry = await build([{"name": "motion", "description": "Motion in the hall?",
                             "kind": "digital_input", "pin": 24, "pull": "down"}])
    assert (await registry.call("motion", {}))["result"]["active"] is False
    mock_factory.pin(24).drive_high()
    assert (await registry.call("motion", {}))["result"]["active"] is True


async def test_tone_buzzer_sounds_at_the_frequency_then_stops(
        build: Any, mock_factory: MockFactory, level: Any) -> None:
    registry = await build([{"name": "beep", "description": "Beeper.", "kind": "buzzer",
                             "pin": 23, "tone": True}])
    pin = mock_factory.pin(23)
    pin.clear_states()
    response = await registry.call("beep", {"duration_s": 0.03, "frequency_hz": 880})
    assert response["result"]["frequency_hz"] == 880.0
    assert response["result"]["sounded_s"] >= 0.03
    assert [s.state for s in pin.states] == [0.0, 0.5, 0.0]
    assert pin.frequency == 880
    assert level(23) == 0.0


async def test_active_buzzer_is_switched(build: Any, mock_factory: MockFactory) -> None:
    registry = await build([{"name": "beep", "description": "Beeper.", "kind": "buzzer",
                             "pin": 23, "duration_s": 0.01}])
    pin = mock_factory.pin(23)
    pin.clear_states()
    response = await registry.call("beep", {})
    assert "frequency_hz" not in response["result"]
    assert [bool(s.state) for s in pin.states] == [False, True, False]


async def test_pin_changes_reach_listeners_on_the_loop(build: Any) -> None:
    registry = await build([LIGHT])
    seen: list[Any] = []
    unsubscribe = registry.on_change(seen.append)
    await registry.call("porch_light", {"action": "on"})
    await registry.call("porch_light", {"action": "off"})
    assert [(c.device, c.state, c.levels) for c in seen] == [
        ("porch_light", {"on": True}, {"GPIO17": 1.0}),
        ("porch_light", {"on": False}, {"GPIO17": 0.0}),
    ]
    unsubscribe()
    await registry.call("porch_light", {"action": "on"})
    assert len(seen) == 2


async def test_describe_pins_lists_every_device(build: Any, mock_factory: MockFactory) -> None:
    registry = await build([LIGHT, {"name": "fan", "description": "Fan.", "kind": "pwm",
                                    "pin": 12}])
    await registry.call("fan", {"value": 0.5})
    assert registry.describe_pins() == {
        "porch_light": {"kind": "digital_output", "pins": {"GPIO17": 0.0},
                        "state": {"on": False}},
        "fan": {"kind": "pwm", "pins": {"GPIO12": 0.5}, "state": {"value": 0.5}},
    }
