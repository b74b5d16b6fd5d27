"""Typed GPIO and tool configuration, parsed from the plain dicts `tomllib` produces.

The config file holds a ``[gpio]`` table (pin factory, disconnect watchdog, the agent's own
status LEDs and buttons under ``[gpio.status]``) and an array of ``[[tools]]``, one per
function the model may call::

    [gpio]
    pin_factory = "mock"              # "default" (lgpio on a Pi), "lgpio" or "mock"
    chip = "auto"                     # lgpio gpiochip number, or "auto" (found by label)
    safe_after_disconnect_s = 30.0    # pins go safe when the session is gone this long

    [gpio.status]
    leds = { connected = 5, listening = 6, speaking = 13, error = 19 }
    mute_button = 20                  # the mic stops while muted
    push_to_talk_button = 21

    [[tools]]
    name = "porch_light"
    description = "Switch the porch light on or off."
    kind = "digital_output"
    pin = 17
    rate_limit = { calls = 10, per_s = 60 }

Parsing collects every problem before raising `ToolConfigError`, each with its key path
(``tools[2].pin``) so the config layer can add the file and line. Pins are BCM GPIO numbers
of the 40-pin header (0..27); a pin used twice anywhere is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from agent.tools._reader import MAX_PIN, MAX_SECONDS, MISSING, Table
from agent.tools.errors import ConfigProblem, KeyPath, ToolConfigError, format_key
from agent.tools.kinds import (
    KIND_PARSERS,
    BuzzerOptions,
    CustomOptions,
    DigitalInputOptions,
    DigitalOutputOptions,
    PulseOptions,
    PwmOptions,
    RgbLedOptions,
    ServoOptions,
    ToolOptions,
)

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "MAX_PIN",
    "MAX_SECONDS",
    "STATUS_LEDS",
    "BuzzerOptions",
    "CustomOptions",
    "DigitalInputOptions",
    "DigitalOutputOptions",
    "GpioConfig",
    "PulseOptions",
    "PwmOptions",
    "RateLimit",
    "RgbLedOptions",
    "ServoOptions",
    "StatusGpioSpec",
    "ToolConfigError",
    "ToolKind",
    "ToolSpec",
    "check_pin_conflicts",
    "parse_gpio",
    "parse_status_gpio",
    "parse_tools",
]

ToolKind = Literal[
    "digital_output", "pulse", "pwm", "servo", "rgb_led", "digital_input", "buzzer", "custom"
]
PinFactoryKind = Literal["default", "lgpio", "mock"]
StatusLed = Literal["connected", "listening", "speaking", "error"]
STATUS_LEDS: tuple[str, ...] = get_args(StatusLed)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``calls`` accepted calls in any window of ``per_s`` seconds."""

    calls: int
    per_s: float


DEFAULT_RATE_LIMIT = RateLimit(calls=20, per_s=60.0)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One function the model may call, and the hardware it drives.

    ``pins`` maps a role to a BCM GPIO number: ``{"pin": 17}`` for single-pin kinds,
    ``{"red": 9, "green": 10, "blue": 11}`` for an RGB LED, ``{"0": 5, ...}`` for the pins a
    custom handler reserves. ``parameters`` is the JSON schema sent to the model (None: the
    function takes no arguments). ``safe_state`` is kind-specific: ``"off"``/``"on"``
    (digital output), ``"off"`` (pulse, buzzer), a value 0..1 (PWM), ``"detach"`` or an angle
    (servo), a ``#rrggbb`` colour (RGB LED), None (inputs, custom).
    """

    name: str
    description: str
    kind: ToolKind
    pins: Mapping[str, int]
    options: ToolOptions
    parameters: Mapping[str, Any] | None
    active_low: bool = False
    safe_state: str | float | None = None
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT
    timeout_s: float = 2.0

    @property
    def pin(self) -> int | None:
        """The pin of a single-pin tool, else None."""
        return self.pins.get("pin")


@dataclass(frozen=True, slots=True)
class StatusGpioSpec:
    """The agent's own GPIO: status LEDs by state name and the mute / push-to-talk buttons.

    ``mute_mode`` "toggle": each press flips mute; "switch": muted while the switch is
    closed (a latching privacy switch).
    """

    leds: Mapping[str, int] = field(default_factory=dict)
    leds_active_low: bool = False
    mute_button: int | None = None
    mute_mode: Literal["toggle", "switch"] = "toggle"
    push_to_talk_button: int | None = None
    buttons_pull_up: bool = True
    bounce_s: float | None = 0.05

    def pin_roles(self) -> dict[str, int]:
        """Every claimed pin by role (``leds.connected``, ``mute_button``, ...)."""
        roles = {f"leds.{name}": pin for name, pin in self.leds.items()}
        if self.mute_button is not None:
            roles["mute_button"] = self.mute_button
        if self.push_to_talk_button is not None:
            roles["push_to_talk_button"] = self.push_to_talk_button
        return roles


@dataclass(frozen=True, slots=True)
class GpioConfig:
    """Everything the tools layer needs from the config file."""

    pin_factory: PinFactoryKind = "default"
    chip: int | Literal["auto"] = "auto"
    safe_after_disconnect_s: float = 30.0
    status: StatusGpioSpec | None = None
    tools: tuple[ToolSpec, ...] = ()


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


def _rate_limit(t: Table) -> RateLimit | None:
    raw = t.get("rate_limit", None)
    if raw is None:
        return DEFAULT_RATE_LIMIT
    if raw is False:  # explicitly unlimited
        return None
    if not isinstance(raw, Mapping):
        t.problem("rate_limit", "must be a table { calls = N, per_s = S } or false")
        return DEFAULT_RATE_LIMIT
    sub = Table(raw, (*t.loc, "rate_limit"), t.problems)
    calls = sub.number("calls", MISSING, 1, 10_000)
    per_s = sub.number("per_s", MISSING, 0, 86_400, lo_open=True)
    sub.finish()
    if not float(calls).is_integer():
        sub.problem("calls", "must be a whole number")
    return RateLimit(calls=int(calls), per_s=per_s)


def _parse_tool(raw: Any, loc: KeyPath, problems: list[ConfigProblem]) -> ToolSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(ConfigProblem(loc, "must be a table ([[tools]])"))
        return None
    start = len(problems)
    t = Table(raw, loc, problems)
    name = t.text("name")
    if name and not _NAME.fullmatch(name):
        t.problem("name", "must start with a letter or _ and use only letters, digits, "
                          f"_ . : - (at most 64 characters); got {name!r}")
    description = t.text("description").strip()
    if "description" in raw and not description:
        t.problem("description", "must say what the function does (the model reads it)")
    kind = t.text("kind", choices=tuple(KIND_PARSERS))
    rate_limit = _rate_limit(t)
    if kind not in KIND_PARSERS:
        return None  # kind-specific keys cannot be judged without a kind
    result = KIND_PARSERS[kind](t)
    timeout = t.number("timeout_s", result.default_timeout_s, 0, MAX_SECONDS, lo_open=True)
    if timeout <= result.min_timeout_s:
        t.problem("timeout_s", f"must be longer than the longest action "
                               f"({result.min_timeout_s:g} s)")
    t.finish(f" for kind {kind!r}")
    if len(problems) > start:
        return None
    return ToolSpec(
        name=name, description=description, kind=cast(ToolKind, kind), pins=result.pins,
        options=result.options, parameters=result.parameters, active_low=result.active_low,
        safe_state=result.safe_state, rate_limit=rate_limit, timeout_s=timeout)


def _tool_pin_locs(spec: ToolSpec, loc: KeyPath) -> list[tuple[int, KeyPath]]:
    out: list[tuple[int, KeyPath]] = []
    for role, pin in spec.pins.items():
        if spec.kind == "rgb_led":
            out.append((pin, (*loc, "pins", role)))
        elif spec.kind == "custom":
            out.append((pin, (*loc, "pins", int(role))))
        else:
            out.append((pin, (*loc, role)))
    return out


def _status_pin_locs(spec: StatusGpioSpec, loc: KeyPath) -> list[tuple[int, KeyPath]]:
    return [(pin, (*loc, *role.split("."))) for role, pin in spec.pin_roles().items()]


def check_pin_conflicts(
    tools: Sequence[ToolSpec],
    status: StatusGpioSpec | None = None,
    *,
    tools_loc: KeyPath = ("tools",),
    status_loc: KeyPath = ("gpio", "status"),
) -> list[ConfigProblem]:
    """Problems for every pin claimed in more than one place (tools and status GPIO) and for
    tool names used twice."""
    return _conflicts(list(enumerate(tools)), status, tools_loc, status_loc)


def _conflicts(tools: Sequence[tuple[int, ToolSpec]], status: StatusGpioSpec | None,
               tools_loc: KeyPath, status_loc: KeyPath) -> list[ConfigProblem]:
    uses: list[tuple[int, KeyPath]] = []
    for i, spec in tools:
        uses += _tool_pin_locs(spec, (*tools_loc, i))
    if status is not None:
        uses += _status_pin_locs(status, status_loc)
    first: dict[int, KeyPath] = {}
    problems: list[ConfigProblem] = []
    for pin, loc in uses:
        if pin in first:
            problems.append(ConfigProblem(
                loc, f"GPIO{pin} is already used by {format_key(first[pin])}; "
                     "each pin can be claimed once"))
        else:
            first[pin] = loc
    names: dict[str, int] = {}
    for i, spec in tools:
        if spec.name in names:
            problems.append(ConfigProblem((*tools_loc, i, "name"),
                                          f"{spec.name!r} is already the name of "
                                          f"{format_key((*tools_loc, names[spec.name]))}"))
        names.setdefault(spec.name, i)
    return problems


def parse_tools(raw: Sequence[Mapping[str, Any]], *, loc: KeyPath = ("tools",)) -> list[ToolSpec]:
    """Parse the ``[[tools]]`` array; raise `ToolConfigError` listing every problem.

    Checks types, ranges, unknown keys, duplicate names and pins claimed twice among tools.
    """
    problems: list[ConfigProblem] = []
    parsed = _parse_tool_list(raw, loc, problems)
    problems += _conflicts(parsed, None, loc, ())
    if problems:
        raise ToolConfigError(problems)
    return [spec for _, spec in parsed]


def _parse_tool_list(raw: Any, loc: KeyPath,
                     problems: list[ConfigProblem]) -> list[tuple[int, ToolSpec]]:
    """The tools that parsed cleanly, each with its index in the config array."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        problems.append(ConfigProblem(loc, "must be an array of tables ([[tools]])"))
        return []
    out: list[tuple[int, ToolSpec]] = []
    for i, item in enumerate(raw):
        spec = _parse_tool(item, (*loc, i), problems)
        if spec is not None:
            out.append((i, spec))
    return out


def _parse_status(raw: Any, loc: KeyPath, problems: list[ConfigProblem]) -> StatusGpioSpec:
    if not isinstance(raw, Mapping):
        problems.append(ConfigProblem(loc, "must be a table"))
        return StatusGpioSpec()
    t = Table(raw, loc, problems)
    leds: dict[str, int] = {}
    raw_leds = t.get("leds", {})
    if isinstance(raw_leds, Mapping):
        sub = Table(raw_leds, (*loc, "leds"), problems)
        for name in STATUS_LEDS:
            pin = sub.pin(name, None)
            if pin is not None:
                leds[name] = pin
        sub.finish()
    else:
        t.problem("leds", "must be a table { connected = N, listening = N, speaking = N, "
                          "error = N }")
    bounce = t.get("bounce_s", 0.05)
    if bounce is not None:
        bounce = t.number("bounce_s", 0.05, 0, 1, lo_open=True)
    return _finish_status(t, leds, bounce)


def _finish_status(t: Table, leds: dict[str, int], bounce: float | None) -> StatusGpioSpec:
    spec = StatusGpioSpec(
        leds=leds,
        leds_active_low=t.flag("leds_active_low", False),
        mute_button=t.pin("mute_button", None),
        mute_mode=cast(Literal["toggle", "switch"],
                       t.text("mute_mode", "toggle", ("toggle", "switch")) or "toggle"),
        push_to_talk_button=t.pin("push_to_talk_button", None),
        buttons_pull_up=t.flag("buttons_pull_up", True),
        bounce_s=bounce,
    )
    t.finish()
    return spec


def parse_status_gpio(raw: Mapping[str, Any], *,
                      loc: KeyPath = ("gpio", "status")) -> StatusGpioSpec:
    """Parse ``[gpio.status]``; raise `ToolConfigError` listing every problem."""
    problems: list[ConfigProblem] = []
    spec = _parse_status(raw, loc, problems)
    problems += _conflicts([], spec, ("tools",), loc)
    if problems:
        raise ToolConfigError(problems)
    return spec


def parse_gpio(gpio: Mapping[str, Any] | None, tools: Sequence[Mapping[str, Any]] | None,
               ) -> GpioConfig:
    """Parse the ``[gpio]`` table and the ``[[tools]]`` array together.

    This is the entry point for the config layer: on top of each part's own checks it
    rejects a pin claimed both by a tool and by the status GPIO.
    """
    problems: list[ConfigProblem] = []
    t = Table(gpio or {}, ("gpio",), problems)
    factory = t.text("pin_factory", "default", get_args(PinFactoryKind)) or "default"
    chip_raw = t.get("chip", "auto")
    chip: int | Literal["auto"] = "auto"
    if isinstance(chip_raw, int) and not isinstance(chip_raw, bool) and 0 <= chip_raw <= 63:
        chip = chip_raw
    elif chip_raw != "auto":
        t.problem("chip", f'must be "auto" or a gpiochip number 0..63 (got {chip_raw!r})')
    safe_after = t.number("safe_after_disconnect_s", 30.0, 0, 86_400, lo_open=True)
    status_raw = t.get("status", None)
    status = None if status_raw is None else _parse_status(status_raw, ("gpio", "status"),
                                                           problems)
    t.finish()
    parsed = _parse_tool_list(tools if tools is not None else [], ("tools",), problems)
    problems += _conflicts(parsed, status, ("tools",), ("gpio", "status"))
    if problems:
        raise ToolConfigError(problems)
    return GpioConfig(pin_factory=cast(PinFactoryKind, factory), chip=chip,
                      safe_after_disconnect_s=safe_after, status=status,
                      tools=tuple(spec for _, spec in parsed))
