"""The handler kinds: their options and how each kind's config keys are read.

Each kind's parser (`KIND_PARSERS`) reads the kind-specific keys of one ``[[tools]]`` table
and generates the JSON schema the model sees, so the declared limits and the enforced limits come
from the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from agent.tools._reader import MAX_SECONDS, MISSING, Table, check_pin
from agent.tools.colour import COLOUR_HELP, parse_colour, to_hex
from agent.tools.errors import ArgumentError
from agent.tools.schema import check_schema

__all__ = [
    "KIND_PARSERS",
    "BuzzerOptions",
    "CustomOptions",
    "DigitalInputOptions",
    "DigitalOutputOptions",
    "KindResult",
    "PulseOptions",
    "PwmOptions",
    "RgbLedOptions",
    "ServoOptions",
    "ToolOptions",
]

_ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True, slots=True)
class DigitalOutputOptions:
    """On/off output (lamp, LED, relay held on); ``active_low`` lives on `ToolSpec`."""


@dataclass(frozen=True, slots=True)
class PulseOptions:
    """Momentary output (a relay that "presses" a button): on for a bounded time, then off."""

    duration_s: float = 0.5
    min_duration_s: float = 0.05
    max_duration_s: float = 2.0


@dataclass(frozen=True, slots=True)
class PwmOptions:
    """PWM output (brightness, fan speed); the model sets a value from 0 to ``max_value``."""

    frequency_hz: float = 100.0
    max_value: float = 1.0


@dataclass(frozen=True, slots=True)
class ServoOptions:
    """Hobby servo. ``min_angle``/``max_angle`` map onto the pulse widths; the model may only
    ask for angles within ``limit_min``..``limit_max`` (the configured safe travel)."""

    min_angle: float = -90.0
    max_angle: float = 90.0
    limit_min: float = -90.0
    limit_max: float = 90.0
    min_pulse_width_s: float = 0.001
    max_pulse_width_s: float = 0.002
    frame_width_s: float = 0.02


@dataclass(frozen=True, slots=True)
class RgbLedOptions:
    """RGB LED on three pins (``pins = {red, green, blue}``); ``active_low`` = common anode."""

    pwm: bool = True


@dataclass(frozen=True, slots=True)
class DigitalInputOptions:
    """A readable input: button, door contact, PIR. Reports ``active_label``/``inactive_label``."""

    pull: Literal["up", "down", "floating"] = "up"
    active_high: bool | None = None  # only with pull = "floating", where it is required
    bounce_s: float | None = None
    active_label: str = "active"
    inactive_label: str = "inactive"


@dataclass(frozen=True, slots=True)
class BuzzerOptions:
    """Buzzer: an active one switched on/off, or (``tone``) a passive one driven by PWM."""

    tone: bool = False
    duration_s: float = 0.2
    max_duration_s: float = 2.0
    frequency_hz: float = 440.0
    min_frequency_hz: float = 100.0
    max_frequency_hz: float = 5000.0


@dataclass(frozen=True, slots=True)
class CustomOptions:
    """A Python entry point ``module:function`` called as ``function(args, ctx)`` in a worker
    thread; ``safe_handler`` (optional) is called as ``safe(ctx)`` to restore its safe state."""

    handler: str
    safe_handler: str | None = None


ToolOptions = (
    DigitalOutputOptions | PulseOptions | PwmOptions | ServoOptions | RgbLedOptions
    | DigitalInputOptions | BuzzerOptions | CustomOptions
)


@dataclass(slots=True)
class KindResult:
    """What a kind parser found: pins by role, options, the generated schema, defaults."""

    pins: dict[str, int]
    options: ToolOptions
    parameters: dict[str, Any] | None
    active_low: bool = False
    safe_state: str | float | None = None
    default_timeout_s: float = 2.0
    min_timeout_s: float = 0.0  # timeout_s must exceed this (the longest allowed action)


def _obj(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _single_pin(t: Table) -> dict[str, int]:
    pin = t.pin("pin")
    return {} if pin is None else {"pin": pin}


def _digital_output(t: Table) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    safe = t.text("safe_state", "off", ("off", "on"))
    params = _obj({"action": {"type": "string", "enum": ["on", "off", "toggle"],
                              "description": "Switch it on, off, or to the opposite state."}},
                  ["action"])
    return KindResult(pins, DigitalOutputOptions(), params, active_low, safe)


def _pulse(t: Table) -> KindResult:
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


def _pwm(t: Table) -> KindResult:
    pins = _single_pin(t)
    active_low = t.flag("active_low", False)
    freq = t.number("frequency_hz", 100.0, 0, 100_000, lo_open=True)
    max_value = t.number("max_value", 1.0, 0, 1, lo_open=True)
    safe = t.number("safe_state", 0.0, 0, max_value)
    params = _obj({"value": {
        "type": "number", "minimum": 0, "maximum": max_value,
        "description": f"Level from 0 (off) to {max_value:g} (full)."}}, ["value"])
    return KindResult(pins, PwmOptions(freq, max_value), params, active_low, safe)


def _servo(t: Table) -> KindResult:
    pins = _single_pin(t)
    lo = t.number("min_angle", -90.0, -360, 360)
    hi = t.number("max_angle", 90.0, -360, 360)
    if hi <= lo:
        t.problem("max_angle", "must be greater than min_angle")
        hi = lo + 1
    limit_lo, limit_hi = lo, hi
    limits = t.get("limits", None)
    if limits is not None:
        ok = (isinstance(limits, list) and len(limits) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in limits)
              and lo <= limits[0] < limits[1] <= hi)
        if ok:
            limit_lo, limit_hi = float(limits[0]), float(limits[1])
        else:
            t.problem("limits", f"must be [low, high] with {lo:g} <= low < high <= {hi:g} "
                                f"(got {limits!r})")
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
        t.problem("safe_state", f'must be "detach" or an angle from {limit_lo:g} to '
                                f"{limit_hi:g} (got {safe_raw!r})")
    opts = ServoOptions(lo, hi, limit_lo, limit_hi, min_pw, max_pw, frame)
    params = _obj({"angle": {
        "type": "number", "minimum": limit_lo, "maximum": limit_hi,
        "description": f"Target angle in degrees, {limit_lo:g} to {limit_hi:g}."}}, ["angle"])
    return KindResult(pins, opts, params, False, safe)


def _rgb_led(t: Table) -> KindResult:
    pins: dict[str, int] = {}
    raw = t.get("pins")
    if isinstance(raw, Mapping):
        sub = Table(raw, (*t.loc, "pins"), t.problems)
        for role in ("red", "green", "blue"):
            pin = sub.pin(role)
            if pin is not None:
                pins[role] = pin
        sub.finish()
    elif raw is not MISSING:
        t.problem("pins", "must be a table { red = N, green = N, blue = N }")
    active_low = t.flag("active_low", False)
    pwm = t.flag("pwm", True)
    safe_text = t.text("safe_state", "off")
    try:
        safe = to_hex(parse_colour(safe_text))
    except ArgumentError:
        t.problem("safe_state", f"must be {COLOUR_HELP} (got {safe_text!r})")
        safe = "#000000"
    params = _obj({"colour": {"type": "string", "description": f"The colour: {COLOUR_HELP}."}},
                  ["colour"])
    return KindResult(pins, RgbLedOptions(pwm), params, active_low, safe)


def _digital_input(t: Table) -> KindResult:
    pins = _single_pin(t)
    pull = cast(Literal["up", "down", "floating"],
                t.text("pull", "up", ("up", "down", "floating")) or "up")
    active_high: bool | None = None
    if "active_high" in t.raw:
        active_high = t.flag("active_high", True)
        if pull != "floating":
            t.problem("active_high", 'is only used with pull = "floating" (with a pull '
                                     "resistor the active level follows from it)")
    elif pull == "floating":
        t.problem("active_high", 'is required with pull = "floating"')
    bounce = t.get("bounce_s", None)
    if bounce is not None:
        bounce = t.number("bounce_s", None, 0, 1, lo_open=True)
    opts = DigitalInputOptions(
        pull=pull, active_high=active_high, bounce_s=bounce,
        active_label=t.text("active_label", "active") or "active",
        inactive_label=t.text("inactive_label", "inactive") or "inactive")
    return KindResult(pins, opts, None)


def _buzzer(t: Table) -> KindResult:
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


def _custom(t: Table) -> KindResult:
    handler = t.text("handler")
    if handler and not _ENTRY_POINT.fullmatch(handler):
        t.problem("handler", f'must be an entry point "package.module:function" (got {handler!r})')
    safe_handler: str | None = t.get("safe_handler", None)
    if safe_handler is not None and (not isinstance(safe_handler, str)
                                     or not _ENTRY_POINT.fullmatch(safe_handler)):
        t.problem("safe_handler", 'must be an entry point "package.module:function" '
                                  f"(got {safe_handler!r})")
        safe_handler = None
    pins: dict[str, int] = {}
    raw_pins = t.get("pins", [])
    if isinstance(raw_pins, list):
        for i, value in enumerate(raw_pins):
            pin = check_pin(value, (*t.loc, "pins", i), t.problems)
            if pin is not None:
                pins[str(i)] = pin
    else:
        t.problem("pins", "must be a list of BCM GPIO numbers")
    params: dict[str, Any] | None = None
    raw_params = t.get("parameters", None)
    if raw_params is not None:
        found = check_schema(raw_params, (*t.loc, "parameters"))
        t.problems.extend(found)
        if not found:
            params = _plain(raw_params)
            if not params.get("properties"):
                params = None  # the API rejects an object schema without properties
    return KindResult(pins, CustomOptions(handler, safe_handler), params, default_timeout_s=5.0)


def _plain(value: Any) -> Any:
    """Deep copy of a TOML value as plain dicts and lists (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


KIND_PARSERS: dict[str, Callable[[Table], KindResult]] = {
    "digital_output": _digital_output,
    "pulse": _pulse,
    "pwm": _pwm,
    "servo": _servo,
    "rgb_led": _rgb_led,
    "digital_input": _digital_input,
    "buzzer": _buzzer,
    "custom": _custom,
}
