"""The options of each kind of tool: what its `ToolSpec` carries besides pins and schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BuzzerOptions",
    "CustomOptions",
    "DigitalInputOptions",
    "DigitalOutputOptions",
    "PulseOptions",
    "PwmOptions",
    "RgbLedOptions",
    "ServoOptions",
    "ToolOptions",
]


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
