"""[gpio], [gpio.status] and [[tools]]: typed specs from tomllib dicts, and every problem with
its key path."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from agent.config import ConfigError
from agent.config.gpio import parse_gpio, parse_status_gpio, parse_tools
from agent.tools.options import BuzzerOptions, PulseOptions, ServoOptions
from agent.tools.spec import DEFAULT_RATE_LIMIT, RateLimit

EXAMPLE = """
[gpio]
pin_factory = "mock"
safe_after_disconnect_s = 12.5

[gpio.status]
leds = { connected = 5, listening = 6, speaking = 13, error = 19 }
mute_button = 20
mute_mode = "switch"
push_to_talk_button = 21

[[tools]]
name = "porch_light"
description = "Switch the porch light on or off."
kind = "digital_output"
pin = 17
active_low = true
rate_limit = { calls = 5, per_s = 30 }

[[tools]]
name = "garage_door"
description = "Press the garage door button."
kind = "pulse"
pin = 18
duration_s = 0.4
max_duration_s = 1.5

[[tools]]
name = "desk_lamp"
description = "Dim the desk lamp."
kind = "pwm"
pin = 12
max_value = 0.8

[[tools]]
name = "camera_pan"
description = "Turn the camera."
kind = "servo"
pin = 16
limits = [-60, 60]
safe_state = 0

[[tools]]
name = "mood_light"
description = "Colour of the mood light."
kind = "rgb_led"
pins = { red = 9, green = 10, blue = 11 }
safe_state = "warm white"

[[tools]]
name = "front_door"
description = "Is the front door shut?"
kind = "digital_input"
pin = 22
active_label = "closed"
inactive_label = "open"
bounce_s = 0.02

[[tools]]
name = "chime"
description = "Sound a chime."
kind = "buzzer"
pin = 23
tone = true
max_duration_s = 1.0
rate_limit = false

[[tools]]
name = "weather"
description = "Read the weather station."
kind = "custom"
handler = "weather_station.tools:read"
timeout_s = 3
parameters = { type = "object", properties = { unit = { type = "string", enum = ["C", "F"] } } }
"""


def parse_example(text: str = EXAMPLE) -> Any:
    doc = tomllib.loads(text)
    return parse_gpio(doc.get("gpio"), doc.get("tools"))


def problems_in(exc: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(p.key, p.message) for p in exc.value.problems]


def test_a_full_toml_config_parses_into_typed_specs() -> None:
    config = parse_example()
    assert config.pin_factory == "mock"
    assert config.chip == "auto"
    assert config.safe_after_disconnect_s == 12.5
    assert config.status is not None
    assert dict(config.status.leds) == {"connected": 5, "listening": 6, "speaking": 13,
                                        "error": 19}
    assert config.status.mute_mode == "switch"
    assert config.status.pin_roles()["push_to_talk_button"] == 21
    tools = {t.name: t for t in config.tools}
    assert list(tools) == ["porch_light", "garage_door", "desk_lamp", "camera_pan",
                           "mood_light", "front_door", "chime", "weather"]
    light = tools["porch_light"]
    assert (light.kind, light.pin, light.active_low, light.safe_state) == (
        "digital_output", 17, True, "off")
    assert light.rate_limit == RateLimit(calls=5, per_s=30.0)
    assert tools["garage_door"].options == PulseOptions(0.4, 0.05, 1.5)
    assert tools["garage_door"].timeout_s == 2.5  # longest pulse + 1 s
    assert tools["desk_lamp"].parameters["properties"]["value"]["maximum"] == 0.8
    servo = tools["camera_pan"]
    assert isinstance(servo.options, ServoOptions)
    assert (servo.options.limit_min, servo.options.limit_max, servo.safe_state) == (
        -60, 60, 0.0)
    assert tools["mood_light"].pins == {"red": 9, "green": 10, "blue": 11}
    assert tools["mood_light"].safe_state == "#ffb46b"
    assert tools["front_door"].parameters is None
    assert tools["front_door"].rate_limit == DEFAULT_RATE_LIMIT
    assert tools["chime"].rate_limit is None
    assert tools["chime"].options == BuzzerOptions(True, 0.2, 1.0, 440.0, 100.0, 5000.0)
    weather = tools["weather"]
    assert weather.parameters == {"type": "object", "properties": {
        "unit": {"type": "string", "enum": ["C", "F"]}}}
    assert weather.timeout_s == 3.0


def test_defaults_for_an_empty_gpio_table() -> None:
    config = parse_gpio(None, None)
    assert (config.pin_factory, config.chip, config.safe_after_disconnect_s, config.status,
            config.tools) == ("default", "auto", 30.0, None, ())


def test_the_same_pin_in_tools_and_status_gpio_is_an_error() -> None:
    text = EXAMPLE.replace("mute_button = 20", "mute_button = 17")
    with pytest.raises(ConfigError) as info:
        parse_example(text)
    assert problems_in(info) == [
        ("gpio.status.mute_button", "GPIO17 is already used by tools[0].pin; each pin can "
                                    "be claimed once")]


def test_pins_inside_an_rgb_led_and_custom_pins_are_checked_too() -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools([
            {"name": "a", "description": "A.", "kind": "rgb_led",
             "pins": {"red": 1, "green": 2, "blue": 1}},
            {"name": "b", "description": "B.", "kind": "custom", "handler": "m:f",
             "pins": [3, 2]},
        ])
    assert problems_in(info) == [
        ("tools[0].pins.blue", "GPIO1 is already used by tools[0].pins.red; each pin can be "
                               "claimed once"),
        ("tools[1].pins[1]", "GPIO2 is already used by tools[0].pins.green; each pin can be "
                             "claimed once"),
    ]


def test_status_leds_sharing_a_pin() -> None:
    with pytest.raises(ConfigError) as info:
        parse_status_gpio({"leds": {"connected": 5, "error": 5}})
    assert problems_in(info)[0][0] == "gpio.status.leds.error"


@pytest.mark.parametrize(
    ("tool", "key", "fragment"),
    [
        ({"pin": 28}, "tools[0].pin", "must be a BCM GPIO number from 0 to 27, got 28"),
        ({"pin": True}, "tools[0].pin", "must be a BCM GPIO number"),
        ({"pin": "17"}, "tools[0].pin", "must be a BCM GPIO number"),
        ({"colour": "red"}, "tools[0].colour", 'unknown key for kind "digital_output"'),
        ({"safe_state": "maybe"}, "tools[0].safe_state", 'must be one of "off", "on"'),
        ({"name": "porch light"}, "tools[0].name", "must start with a letter"),
        ({"name": "x" * 65}, "tools[0].name", "at most 64 characters"),
        ({"description": "  "}, "tools[0].description", "must say what the function does"),
        ({"timeout_s": 0}, "tools[0].timeout_s", "must be greater than 0 and at most 600, got 0"),
        ({"timeout_s": "2"}, "tools[0].timeout_s", "must be a number"),
        ({"rate_limit": {"calls": 0, "per_s": 1}}, "tools[0].rate_limit.calls",
         "must be between 1 and 10000, got 0"),
        ({"rate_limit": {"calls": 2}}, "tools[0].rate_limit.per_s", "is required"),
        ({"rate_limit": {"calls": 2, "per_s": 1, "burst": 3}}, "tools[0].rate_limit.burst",
         "unknown key"),
        ({"rate_limit": True}, "tools[0].rate_limit", "must be a table"),
        ({"active_low": "yes"}, "tools[0].active_low", "must be true or false"),
        ({"behavior": "ASYNC"}, "tools[0].behavior", 'must be one of "BLOCKING", "NON_BLOCKING"'),
        ({"behavior": "NON_BLOCKING", "scheduling": "LATER"}, "tools[0].scheduling",
         'must be one of "INTERRUPT", "WHEN_IDLE", "SILENT"'),
        ({"scheduling": "SILENT"}, "tools[0].scheduling",
         'applies only to behavior = "NON_BLOCKING" tools'),
    ],
)
def test_one_bad_value_gives_one_problem_with_its_key_path(
        tool: dict[str, Any], key: str, fragment: str) -> None:
    base = {"name": "porch_light", "description": "Light.", "kind": "digital_output", "pin": 17}
    with pytest.raises(ConfigError) as info:
        parse_tools([{**base, **tool}])
    assert len(info.value.problems) == 1, info.value
    problem = info.value.problems[0]
    assert problem.key == key
    assert fragment in problem.message
    assert f"{key}: " in str(info.value)


@pytest.mark.parametrize(
    ("tool", "key", "fragment"),
    [
        ({"kind": "pulse", "max_duration_s": 1, "timeout_s": 1}, "tools[0].timeout_s",
         "must be longer than the longest action (1 s)"),
        ({"kind": "pulse", "max_duration_s": 1, "duration_s": 3}, "tools[0].duration_s",
         "must be between 0.05 and 1, got 3"),
        ({"kind": "pulse", "safe_state": "on"}, "tools[0].safe_state", 'must be one of "off"'),
        ({"kind": "pwm", "safe_state": 1.5}, "tools[0].safe_state",
         "must be between 0 and 1, got 1.5"),
        ({"kind": "pwm", "max_value": 0}, "tools[0].max_value", "must be greater than 0"),
        ({"kind": "servo", "limits": [-100, 0]}, "tools[0].limits",
         "must be [low, high] with -90 <= low < high <= 90"),
        ({"kind": "servo", "safe_state": 120}, "tools[0].safe_state",
         'must be "detach" or an angle'),
        ({"kind": "servo", "min_angle": 10, "max_angle": 10}, "tools[0].max_angle",
         "must be greater than min_angle"),
        ({"kind": "buzzer", "tone": True, "frequency_hz": 30000}, "tools[0].frequency_hz",
         "must be between 100 and 5000"),
        ({"kind": "buzzer", "frequency_hz": 440}, "tools[0].frequency_hz",
         'unknown key for kind "buzzer"'),
        ({"kind": "digital_input", "safe_state": "off"}, "tools[0].safe_state",
         'unknown key for kind "digital_input"'),
        ({"kind": "digital_input", "pull": "floating"}, "tools[0].active_high",
         'is required with pull = "floating"'),
        ({"kind": "digital_input", "active_high": False}, "tools[0].active_high",
         'is only used with pull = "floating"'),
        ({"kind": "teleport"}, "tools[0].kind", 'must be one of "digital_output"'),
    ],
)
def test_kind_specific_limits(tool: dict[str, Any], key: str, fragment: str) -> None:
    base = {"name": "t", "description": "T.", "pin": 17}
    with pytest.raises(ConfigError) as info:
        parse_tools([{**base, **tool}])
    assert [p.key for p in info.value.problems] == [key], info.value
    assert fragment in info.value.problems[0].message


def test_rgb_led_problems() -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools([{"name": "m", "description": "M.", "kind": "rgb_led",
                      "pins": {"red": 1, "green": 2}, "safe_state": "blurple"}])
    assert problems_in(info) == [
        ("tools[0].pins.blue", "is required"),
        ("tools[0].safe_state", "must be a colour name (e.g. red, orange, warm white), off, "
                                '#rrggbb, or r,g,b with 0..255, got "blurple"'),
    ]


def test_custom_handler_and_schema_problems() -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools([{"name": "c", "description": "C.", "kind": "custom",
                      "handler": "not an entry point",
                      "parameters": {"type": "object",
                                     "properties": {"n": {"type": "int", "oneOf": []}},
                                     "required": ["m"]}}])
    assert [p.key for p in info.value.problems] == [
        "tools[0].handler",
        "tools[0].parameters.properties.n.oneOf",
        "tools[0].parameters.properties.n.type",
        "tools[0].parameters.required",
    ]


def test_every_problem_is_reported_at_once() -> None:
    doc = {"pin_factory": "gpiod", "chip": -1, "bogus": 1,
           "status": {"leds": {"connected": 40, "blinking": 3}}}
    tools: list[Any] = [
        {"name": "a", "description": "A.", "kind": "digital_output", "pin": 4},
        "not a table",
        {"name": "a", "description": "A again.", "kind": "pwm", "pin": 4},
        {"description": "no name", "kind": "servo", "pin": 99},
    ]
    with pytest.raises(ConfigError) as info:
        parse_gpio(doc, tools)
    assert [p.key for p in info.value.problems] == [
        "gpio.pin_factory", "gpio.chip", "gpio.status.leds.connected",
        "gpio.status.leds.blinking", "gpio.bogus", "tools[1]", "tools[3].name",
        "tools[3].pin", "tools[2].pin", "tools[2].name",
    ]


def test_tools_must_be_an_array() -> None:
    with pytest.raises(ConfigError) as info:
        parse_tools({"name": "x"})
    assert problems_in(info) == [("tools", "must be an array of tables ([[tools]]), got a table")]


def test_behavior_defaults_to_blocking_and_scheduling_to_when_idle() -> None:
    base = {"description": "Light.", "kind": "digital_output"}
    blocking, quiet, idle = parse_tools([
        {**base, "name": "a", "pin": 17},
        {**base, "name": "b", "pin": 18, "behavior": "NON_BLOCKING", "scheduling": "SILENT"},
        {**base, "name": "c", "pin": 19, "behavior": "NON_BLOCKING"},
    ])
    assert (blocking.behavior, blocking.scheduling) == ("BLOCKING", None)
    assert (quiet.behavior, quiet.scheduling) == ("NON_BLOCKING", "SILENT")
    assert (idle.behavior, idle.scheduling) == ("NON_BLOCKING", "WHEN_IDLE")
