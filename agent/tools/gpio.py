"""GPIO handler kinds on gpiozero: one `Actuator` per configured tool (`agent.tools.kinds`
registers which kind uses which).

An actuator claims its pins once (`open`, leaving them in the tool's safe state), turns the
model's validated arguments into an `Action` (`prepare`, on the event loop: anything that can
be rejected is rejected here, before a pin moves), runs actions in a worker thread, and
returns to its safe state on request (`safe`). Actions that last (pulse, buzzer) wait on the
call's cancel event, so a timeout or a toolCallCancellation stops them at once.

Which pins and which pin factory come from outside: lgpio on a Pi, gpiozero's `MockFactory`
(with PWM pins) anywhere else; see `agent.tools.pins`.
"""

from __future__ import annotations

import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from gpiozero import (
    AngularServo,
    DigitalInputDevice,
    DigitalOutputDevice,
    PWMOutputDevice,
)

from agent.tools.colour import parse_colour, to_hex
from agent.tools.errors import GpioError
from agent.tools.option_reader import KeyPath, format_key
from agent.tools.options import (
    BuzzerOptions,
    DigitalInputOptions,
    PulseOptions,
    PwmOptions,
    RgbLedOptions,
    ServoOptions,
)
from agent.tools.spec import ToolSpec

__all__ = [
    "Action",
    "Actuator",
    "Buzzer",
    "DigitalInput",
    "DigitalOutput",
    "Pulse",
    "Pwm",
    "RgbLed",
    "Servo",
    "claim",
]

Action = Callable[[threading.Event], Any]
"""A prepared call: runs in a worker thread with the call's cancel event, returns the result."""

Notify = Callable[[], None]


def claim(factory_call: Callable[[], Any], *, what: str, pins: Mapping[str, int]) -> Any:
    """Create a gpiozero device, turning gpiozero's errors into a `GpioError` that says which
    pins and what to do (no GPIO here -> use mock pins)."""
    try:
        return factory_call()
    except Exception as exc:
        gpios = ", ".join(f"GPIO{p}" for p in pins.values())
        hint = ""
        if type(exc).__name__ in ("BadPinFactory", "PinFactoryFallback"):
            hint = ' (no GPIO on this machine? set [gpio] pin_factory = "mock")'
        raise GpioError(f"{what}: cannot claim {gpios}: {type(exc).__name__}: {exc}{hint}") \
            from exc


class Actuator(ABC):
    """The hardware behind one tool."""

    def __init__(self, spec: ToolSpec, pin_factory: Any = None, *,
                 loc: KeyPath = ("tools",)) -> None:
        self.spec = spec
        self.pin_factory = pin_factory
        self.loc = loc
        self.notify: Notify | None = None
        self._devices: list[Any] = []

    # -- lifecycle

    def open(self) -> None:
        """Claim the pins, leaving them in the safe state."""
        what = f"{format_key(self.loc)} ({self.spec.name})"
        self._devices = []
        try:
            for make in self._makers():
                self._devices.append(claim(make, what=what, pins=self.spec.pins))
        except BaseException:
            self.close()  # an RGB LED whose third pin failed releases the first two
            raise

    @abstractmethod
    def _makers(self) -> list[Callable[[], Any]]:
        """Device constructors; called once by `open`."""

    def close(self) -> None:
        """Release the pins (after `safe`)."""
        for device in reversed(self._devices):
            device.close()
        self._devices = []

    @property
    def device(self) -> Any:
        return self._devices[0]

    # -- calls

    @abstractmethod
    def prepare(self, args: Mapping[str, Any]) -> Action:
        """Turn schema-valid arguments into an action; raise `ArgumentError` to reject."""

    @abstractmethod
    def safe(self) -> None:
        """Drive every output to the configured safe state (idempotent, quick)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Logical state for the model and the demo (``{"on": true}``)."""

    def levels(self) -> dict[str, float | None]:
        """Physical level of each pin by name (``{"GPIO17": 1.0}``); None if released."""
        out: dict[str, float | None] = {}
        for pin in self.spec.pins.values():
            out[f"GPIO{pin}"] = None
        for device in self._devices:
            for child in getattr(device, "all", None) or [device]:
                gpio = getattr(child, "pin", None)
                if gpio is not None and not child.closed:
                    out[gpio.info.name] = float(gpio.state)
        return out

    def _changed(self) -> None:
        if self.notify is not None:
            self.notify()


class DigitalOutput(Actuator):
    """On / off / toggle. ``active_low`` inverts the pin level."""

    def _makers(self) -> list[Callable[[], Any]]:
        s = self.spec
        return [lambda: DigitalOutputDevice(s.pin, active_high=not s.active_low,
                                            initial_value=s.safe_state == "on",
                                            pin_factory=self.pin_factory)]

    def prepare(self, args: Mapping[str, Any]) -> Action:
        verb = args["action"]

        def run(cancel: threading.Event) -> dict[str, Any]:
            dev = self.device
            if verb == "toggle":
                dev.toggle()
            else:
                dev.value = verb == "on"
            self._changed()
            return {"state": "on" if dev.value else "off"}

        return run

    def safe(self) -> None:
        self.device.value = self.spec.safe_state == "on"
        self._changed()

    def state(self) -> dict[str, Any]:
        return {"on": bool(self.device.value)}


class Pulse(Actuator):
    """Momentary output (a relay "pressing" a button): on for a bounded time, then off."""

    def _makers(self) -> list[Callable[[], Any]]:
        s = self.spec
        return [lambda: DigitalOutputDevice(s.pin, active_high=not s.active_low,
                                            initial_value=False, pin_factory=self.pin_factory)]

    def prepare(self, args: Mapping[str, Any]) -> Action:
        opts = self.spec.options
        assert isinstance(opts, PulseOptions)
        duration = float(args.get("duration_s", opts.duration_s))

        def run(cancel: threading.Event) -> dict[str, Any]:
            dev = self.device
            start = time.monotonic()
            dev.on()
            self._changed()
            try:
                cancel.wait(duration)
            finally:
                dev.off()
                self._changed()
            return {"pulsed_s": round(time.monotonic() - start, 3)}

        return run

    def safe(self) -> None:
        self.device.off()
        self._changed()

    def state(self) -> dict[str, Any]:
        return {"on": bool(self.device.value)}


class Pwm(Actuator):
    """PWM level 0..max_value (brightness, fan speed)."""

    def _makers(self) -> list[Callable[[], Any]]:
        s, opts = self.spec, self.spec.options
        assert isinstance(opts, PwmOptions)
        return [lambda: PWMOutputDevice(s.pin, active_high=not s.active_low,
                                        initial_value=float(s.safe_state or 0.0),
                                        frequency=opts.frequency_hz,
                                        pin_factory=self.pin_factory)]

    def prepare(self, args: Mapping[str, Any]) -> Action:
        value = float(args["value"])

        def run(cancel: threading.Event) -> dict[str, Any]:
            self.device.value = value
            self._changed()
            return {"value": value}

        return run

    def safe(self) -> None:
        self.device.value = float(self.spec.safe_state or 0.0)
        self._changed()

    def state(self) -> dict[str, Any]:
        return {"value": round(float(self.device.value), 4)}


class Servo(Actuator):
    """Angle within the configured limits; the safe state detaches (no pulses) or holds an
    angle."""

    def _makers(self) -> list[Callable[[], Any]]:
        s, o = self.spec, self.spec.options
        assert isinstance(o, ServoOptions)
        initial = None if s.safe_state == "detach" else s.safe_state
        return [lambda: AngularServo(s.pin, initial_angle=initial, min_angle=o.min_angle,
                                     max_angle=o.max_angle, min_pulse_width=o.min_pulse_width_s,
                                     max_pulse_width=o.max_pulse_width_s,
                                     frame_width=o.frame_width_s, pin_factory=self.pin_factory)]

    def prepare(self, args: Mapping[str, Any]) -> Action:
        angle = float(args["angle"])

        def run(cancel: threading.Event) -> dict[str, Any]:
            self.device.angle = angle
            self._changed()
            return {"angle": angle}

        return run

    def safe(self) -> None:
        if self.spec.safe_state == "detach":
            self.device.detach()
        else:
            self.device.angle = self.spec.safe_state
        self._changed()

    def state(self) -> dict[str, Any]:
        angle = self.device.angle
        return {"angle": None if angle is None else round(float(angle), 2)}


class RgbLed(Actuator):
    """Colour by name, ``#rrggbb`` or ``r,g,b`` on three pins (one device per channel, so
    each pin's level is visible). Without PWM each channel is simply on or off."""

    @property
    def _opts(self) -> RgbLedOptions:
        opts = self.spec.options
        assert isinstance(opts, RgbLedOptions)
        return opts

    def _makers(self) -> list[Callable[[], Any]]:
        s = self.spec
        cls = PWMOutputDevice if self._opts.pwm else DigitalOutputDevice
        safe = self._safe_rgb()
        return [functools.partial(cls, s.pins[role], active_high=not s.active_low,
                                  initial_value=level, pin_factory=self.pin_factory)
                for role, level in zip(("red", "green", "blue"), safe, strict=True)]

    def _safe_rgb(self) -> tuple[float, float, float]:
        return self._fit(parse_colour(str(self.spec.safe_state or "off")))

    def _fit(self, rgb: tuple[float, float, float]) -> tuple[float, float, float]:
        if self._opts.pwm:
            return rgb
        r, g, b = (1.0 if c >= 0.5 else 0.0 for c in rgb)
        return (r, g, b)

    def _show(self, rgb: tuple[float, float, float]) -> None:
        for device, level in zip(self._devices, rgb, strict=True):
            device.value = level if self._opts.pwm else bool(level)
        self._changed()

    def prepare(self, args: Mapping[str, Any]) -> Action:
        rgb = self._fit(parse_colour(args["colour"]))  # ArgumentError before anything moves

        def run(cancel: threading.Event) -> dict[str, Any]:
            self._show(rgb)
            return {"colour": to_hex(rgb)}

        return run

    def safe(self) -> None:
        self._show(self._safe_rgb())

    def state(self) -> dict[str, Any]:
        r, g, b = (float(d.value) for d in self._devices)
        return {"colour": to_hex((r, g, b))}


class DigitalInput(Actuator):
    """Reads a button, door contact or PIR; the answer uses the configured labels."""

    def _makers(self) -> list[Callable[[], Any]]:
        s, o = self.spec, self.spec.options
        assert isinstance(o, DigitalInputOptions)
        pull_up = {"up": True, "down": False, "floating": None}[o.pull]
        return [lambda: DigitalInputDevice(s.pin, pull_up=pull_up, active_state=o.active_high,
                                           bounce_time=o.bounce_s, pin_factory=self.pin_factory)]

    def open(self) -> None:
        super().open()
        # Input changes are pin changes too (the demo shows a door opening).
        self.device.when_activated = self._changed
        self.device.when_deactivated = self._changed

    def prepare(self, args: Mapping[str, Any]) -> Action:
        def run(cancel: threading.Event) -> dict[str, Any]:
            return self.state()

        return run

    def safe(self) -> None:
        """Inputs have nothing to make safe."""

    def state(self) -> dict[str, Any]:
        opts = self.spec.options
        assert isinstance(opts, DigitalInputOptions)
        active = bool(self.device.is_active)
        return {"state": opts.active_label if active else opts.inactive_label, "active": active}


class Buzzer(Actuator):
    """Sounds for a bounded time: an active buzzer switched on, or a passive one driven with
    PWM at a frequency (``tone = true``)."""

    @property
    def _opts(self) -> BuzzerOptions:
        opts = self.spec.options
        assert isinstance(opts, BuzzerOptions)
        return opts

    def _makers(self) -> list[Callable[[], Any]]:
        s, o = self.spec, self._opts
        if o.tone:
            return [lambda: PWMOutputDevice(s.pin, active_high=not s.active_low, initial_value=0,
                                            frequency=o.frequency_hz,
                                            pin_factory=self.pin_factory)]
        return [lambda: DigitalOutputDevice(s.pin, active_high=not s.active_low,
                                            initial_value=False, pin_factory=self.pin_factory)]

    def prepare(self, args: Mapping[str, Any]) -> Action:
        o = self._opts
        duration = float(args.get("duration_s", o.duration_s))
        freq = float(args.get("frequency_hz", o.frequency_hz))

        def run(cancel: threading.Event) -> dict[str, Any]:
            dev = self.device
            start = time.monotonic()
            if o.tone:
                dev.frequency = freq
                dev.value = 0.5  # square wave: loudest for a piezo
            else:
                dev.on()
            self._changed()
            try:
                cancel.wait(duration)
            finally:
                dev.off()
                self._changed()
            result: dict[str, Any] = {"sounded_s": round(time.monotonic() - start, 3)}
            if o.tone:
                result["frequency_hz"] = freq
            return result

        return run

    def safe(self) -> None:
        self.device.off()
        self._changed()

    def state(self) -> dict[str, Any]:
        on = bool(self.device.value)
        if self._opts.tone and on:
            return {"on": True, "frequency_hz": self.device.frequency}
        return {"on": on}
