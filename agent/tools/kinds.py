"""The kinds of tool, registered in one place: `KINDS`.

Each `ToolKind` says how the kind's own keys of a ``[[tools]]`` table are read (its reader,
handed an `OptionReader`, also generates the JSON schema the model sees, so the declared
limits and the enforced limits come from the same numbers), which `Actuator` drives it, and
where each of its pins is written in the table. The config layer checks ``kind`` against
`KINDS`; adding a kind is one entry here, plus its reader and its actuator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

from agent.tools.colour import COLOUR_HELP, parse_colour, to_hex
from agent.tools.custom import CustomHandler
from agent.tools.errors import ArgumentError
from agent.tools.gpio import (
    Actuator,
    Buzzer,
    DigitalInput,
    DigitalOutput,
    Pulse,
    Pwm,
    RgbLed,
    Servo,
)
from agent.tools.option_reader import MAX_SECONDS, REQUIRED, KeyPath, OptionReader
from agent.tools.options import (
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
from agent.tools.schema import check_schema
from agent.tools.spec import ToolSpec

__all__ = ["KINDS", "KindResult", "ToolKind", "build_actuator"]

_ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ENTRY_POINT_HELP = 'must be an entry point "package.module:function"'


@dataclass(slots=True)
class KindResult:
    """What a kind's reader found: pins by role, options, the generated schema, defaults."""

    pins: dict[str, int]
    options: ToolOptions
    parameters: dict[str, Any] | None
    active_low: bool = False
    safe_state: str | float | None = None
    default_timeout_s: float = 2.0
    min_timeout_s: float = 0.0  # timeout_s must exceed this (the longest allowed action)


def _role_key(role: str) -> KeyPath:
    """A pin written under its role's own key: ``pin = 17``."""
    return (role,)


def _pins_table_key(role: str) -> KeyPath:
    """A pin written in a ``pins`` table: ``pins = { red = 9, ... }``."""
    return ("pins", role)


def _pins_array_key(role: str) -> KeyPath:
    """A pin written in a ``pins`` array, its role being its index: ``pins = [5, 6]``."""
    return ("pins", int(role))


@dataclass(frozen=True, slots=True)
class ToolKind:
    """One kind of tool: its reader, its actuator, and where a pin role is written in the
    tool's table (for the messages about pins claimed twice)."""

    read: Callable[[OptionReader], KindResult]
    actuator: type[Actuator]
    pin_key: Callable[[str], KeyPath] = _role_key


def _obj(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _single_pin(t: OptionReader) -> dict[str, int]:
    pin = t.pin("pin")
    return {} if pin is None else {"pin": pin}


def _digital_output(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    safe = t.text("safe_state", "off", ("off", "on"))
    params = _obj({"action": {"type": "string", "enum": ["on", "off", "toggle"],
                              "description": "Switch it on, off, or to the opposite state."}},
                  ["action"])
    return KindResult(pins, DigitalOutputOptions(), params, active_low, safe)


def _pulse(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    t.text("safe_state", "off", ("off",))
    max_s = t.number("max_duration_s", 2.0, 0, MAX_SECONDS, lo_open=True)
    min_s = t.number("min_duration_s", min(0.05, max_s), 0, max_s, lo_open=True)
    default = t.number("duration_s", min(max(0.5, min_s), max_s), min_s, max_s)
    opts = PulseOptions(duration_s=default, min_duration_s=min_s, max_duration_s=max_s)
    params = _obj({"duration_s": {
        "type": "number", "minimum": min_s, "maximum": max_s,
        "description": f"How long to hold it on, in seconds (default {default:g})."}})
    return KindResult(pins, opts, params, active_low, "off", max_s + 1.0, max_s)


def _pwm(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    freq = t.number("frequency_hz", 100.0, 0, 100_000, lo_open=True)
    max_value = t.number("max_value", 1.0, 0, 1, lo_open=True)
    safe = t.number("safe_state", 0.0, 0, max_value)
    params = _obj({"value": {
        "type": "number", "minimum": 0, "maximum": max_value,
        "description": f"Level from 0 (off) to {max_value:g} (full)."}}, ["value"])
    return KindResult(pins, PwmOptions(freq, max_value), params, active_low, safe)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _servo(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    lo = t.number("min_angle", -90.0, -360, 360)
    hi = t.number("max_angle", 90.0, -360, 360)
    if hi <= lo:
        t.problem("max_angle", "must be greater than min_angle")
        hi = lo + 1
    limit_lo, limit_hi = lo, hi
    limits = t.get("limits", None)
    if limits is not None:
        if (isinstance(limits, list) and len(limits) == 2 and all(map(_is_number, limits))
                and lo <= limits[0] < limits[1] <= hi):
            limit_lo, limit_hi = float(limits[0]), float(limits[1])
        else:
            t.invalid("limits", f"must be [low, high] with {lo:g} <= low < high <= {hi:g}",
                      limits)
    min_pw = t.number("min_pulse_width_s", 0.001, 0, 0.01, lo_open=True)
    max_pw = t.number("max_pulse_width_s", 0.002, 0, 0.01, lo_open=True)
    frame = t.number("frame_width_s", 0.02, 0, 0.1, lo_open=True)
    if max_pw <= min_pw:
        t.problem("max_pulse_width_s", "must be greater than min_pulse_width_s")
    elif frame <= max_pw:
        t.problem("frame_width_s", "must be greater than max_pulse_width_s")
    safe_raw = t.get("safe_state", "detach")
    safe: str | float = "detach"
    if isinstance(safe_raw, int | float) and not isinstance(safe_raw, bool) \
            and limit_lo <= safe_raw <= limit_hi:
        safe = float(safe_raw)
    elif safe_raw != "detach":
        t.invalid("safe_state", f'must be "detach" or an angle from {limit_lo:g} to '
                                f"{limit_hi:g}", safe_raw)
    opts = ServoOptions(lo, hi, limit_lo, limit_hi, min_pw, max_pw, frame)
    params = _obj({"angle": {
        "type": "number", "minimum": limit_lo, "maximum": limit_hi,
        "description": f"Target angle in degrees, {limit_lo:g} to {limit_hi:g}."}}, ["angle"])
    return KindResult(pins, opts, params, False, safe)


def _rgb_led(t: OptionReader) -> KindResult:
    pins: dict[str, int] = {}
    raw = t.get("pins", REQUIRED)
    if isinstance(raw, Mapping):
        sub = t.section("pins")
        for role in ("red", "green", "blue"):
            pin = sub.pin(role)
            if pin is not None:
                pins[role] = pin
        sub.finish()
    elif raw is not None:
        t.invalid("pins", "must be a table { red = N, green = N, blue = N }", raw)
    active_low = t.flag("active_low", False)
    pwm = t.flag("pwm", True)
    safe_text = t.text("safe_state", "off")
    try:
        safe = to_hex(parse_colour(safe_text))
    except ArgumentError:
        t.invalid("safe_state", f"must be {COLOUR_HELP}", safe_text)
        safe = "#000000"
    params = _obj({"colour": {"type": "string", "description": f"The colour: {COLOUR_HELP}."}},
                  ["colour"])
    return KindResult(pins, RgbLedOptions(pwm), params, active_low, safe)


def _digital_input(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    pull = cast(Literal["up", "down", "floating"],
                t.text("pull", "up", ("up", "down", "floating")))
    active_high: bool | None = None
    if t.has("active_high"):
        active_high = t.flag("active_high", True)
        if pull != "floating":
            t.problem("active_high", 'is only used with pull = "floating" (with a pull '
                                     "resistor the active level follows from it)")
    elif pull == "floating":
        t.problem("active_high", 'is required with pull = "floating"')
    opts = DigitalInputOptions(
        pull=pull, active_high=active_high,
        bounce_s=t.number("bounce_s", None, 0, 1, lo_open=True),
        active_label=t.text("active_label", "active", allow_empty=True) or "active",
        inactive_label=t.text("inactive_label", "inactive", allow_empty=True) or "inactive")
    return KindResult(pins, opts, None)


def _buzzer(t: OptionReader) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    t.text("safe_state", "off", ("off",))
    tone = t.flag("tone", False)
    max_s = t.number("max_duration_s", 2.0, 0, MAX_SECONDS, lo_open=True)
    default = t.number("duration_s", min(0.2, max_s), 0, max_s, lo_open=True)
    props: dict[str, Any] = {"duration_s": {
        "type": "number", "minimum": 0.01 if max_s >= 0.01 else max_s, "maximum": max_s,
        "description": f"How long to sound, in seconds (default {default:g})."}}
    fmin, fmax, freq = 100.0, 5000.0, 440.0
    if tone:
        fmin = t.number("min_frequency_hz", 100.0, 1, 20_000)
        fmax = t.number("max_frequency_hz", 5000.0, fmin, 20_000)
        freq = t.number("frequency_hz", min(max(440.0, fmin), fmax), fmin, fmax)
        props["frequency_hz"] = {
            "type": "number", "minimum": fmin, "maximum": fmax,
            "description": f"Pitch in hertz (default {freq:g})."}
    opts = BuzzerOptions(tone, default, max_s, freq, fmin, fmax)
    return KindResult(pins, opts, _obj(props), active_low, "off", max_s + 1.0, max_s)


def _custom(t: OptionReader) -> KindResult:
    handler = t.text("handler")
    if handler is not None and not _ENTRY_POINT.fullmatch(handler):
        t.invalid("handler", _ENTRY_POINT_HELP, handler)
    safe_handler: str | None = None
    raw_safe = t.get("safe_handler", None)
    if isinstance(raw_safe, str) and _ENTRY_POINT.fullmatch(raw_safe):
        safe_handler = raw_safe
    elif raw_safe is not None:
        t.invalid("safe_handler", _ENTRY_POINT_HELP, raw_safe)
    pins = {str(i): pin for i, pin in enumerate(t.pin_list("pins"))}
    params: dict[str, Any] | None = None
    raw_params = t.get("parameters", None)
    if raw_params is not None:
        found = check_schema(raw_params, ("parameters",))
        for path, message in found:
            t.problem(path, message)
        if not found:
            params = _plain(raw_params)
            if not params.get("properties"):
                params = None  # the API rejects an object schema without properties
    return KindResult(pins, CustomOptions(handler or "", safe_handler), params,
                      default_timeout_s=5.0)


def _plain(value: Any) -> Any:
    """Deep copy of a TOML value as plain dicts and lists (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


KINDS: Mapping[str, ToolKind] = MappingProxyType({
    "digital_output": ToolKind(_digital_output, DigitalOutput),
    "pulse": ToolKind(_pulse, Pulse),
    "pwm": ToolKind(_pwm, Pwm),
    "servo": ToolKind(_servo, Servo),
    "rgb_led": ToolKind(_rgb_led, RgbLed, _pins_table_key),
    "digital_input": ToolKind(_digital_input, DigitalInput),
    "buzzer": ToolKind(_buzzer, Buzzer),
    "custom": ToolKind(_custom, CustomHandler, _pins_array_key),
})
"""Every kind of tool by the name ``kind = "..."`` gives it in the config file."""


def build_actuator(spec: ToolSpec, pin_factory: Any = None, *,
                   loc: KeyPath = ("tools",)) -> Actuator:
    """The actuator for ``spec.kind`` (not yet opened)."""
    return KINDS[spec.kind].actuator(spec, pin_factory, loc=loc)
