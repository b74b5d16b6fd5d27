"""The agent's own GPIO: status LEDs and the mute / push-to-talk buttons.

`StatusIndicators` switches LEDs by state name (connected, listening, speaking, error); LEDs
not in the config are simply absent. `ControlButtons` turns button edges, which gpiozero
reports on its own threads, into `ButtonEvent` objects delivered on the asyncio loop
(``loop.call_soon_threadsafe``): subscribe with `ControlButtons.on_event` or iterate
`ControlButtons.events`. Mute is a privacy control, so its state lives here and is the one
source of truth (`ControlButtons.muted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from gpiozero import LED, DigitalInputDevice

from agent.tools.gpio import claim
from agent.tools.spec import STATUS_LEDS, StatusGpioSpec

__all__ = ["ButtonEvent", "ControlButtons", "StatusIndicators"]

log = structlog.get_logger(__name__)

ButtonName = Literal["mute", "push_to_talk", "confirm"]


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """``mute``: ``active`` is the new mute state. ``push_to_talk``: ``active`` is True while
    the button is held. ``confirm``: a press (``active`` True)."""

    button: ButtonName
    active: bool


class StatusIndicators:
    """Status LEDs by state name."""

    def __init__(self, spec: StatusGpioSpec, pin_factory: Any = None) -> None:
        self._spec = spec
        self._factory = pin_factory
        self._leds: dict[str, Any] = {}

    def open(self) -> None:
        """Claim the LED pins (all off)."""
        for name, pin in self._spec.leds.items():
            self._leds[name] = claim(
                functools.partial(LED, pin, active_high=not self._spec.leds_active_low,
                                  initial_value=False, pin_factory=self._factory),
                what=f"gpio.status.leds.{name}", pins={name: pin})

    def close(self) -> None:
        for led in self._leds.values():
            led.off()
            led.close()
        self._leds.clear()

    def set(self, name: str, on: bool) -> None:
        """Switch one status LED; a state without a configured LED is ignored."""
        if name not in STATUS_LEDS:
            raise ValueError(f"unknown status LED {name!r}; known: {', '.join(STATUS_LEDS)}")
        led = self._leds.get(name)
        if led is not None:
            led.value = on

    def show(self, *names: str) -> None:
        """Light exactly ``names`` and switch the others off."""
        for name in STATUS_LEDS:
            self.set(name, name in names)

    def states(self) -> dict[str, bool]:
        return {name: bool(led.value) for name, led in self._leds.items()}

    def levels(self) -> dict[str, dict[str, Any]]:
        return {f"status.{name}": {"pins": {"GPIO" + str(self._spec.leds[name]):
                                            float(led.pin.state)},
                                   "state": {"on": bool(led.value)}}
                for name, led in self._leds.items()}


class ControlButtons:
    """Mute, push-to-talk and confirm buttons, delivered as `ButtonEvent` on the asyncio loop."""

    def __init__(self, spec: StatusGpioSpec, pin_factory: Any = None, *,
                 queue_size: int = 32) -> None:
        self._spec = spec
        self._factory = pin_factory
        self._buttons: dict[ButtonName, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: list[Callable[[ButtonEvent], None]] = []
        self._queue: asyncio.Queue[ButtonEvent] = asyncio.Queue(maxsize=queue_size)
        self._muted = False
        self._talking = False

    @property
    def muted(self) -> bool:
        """True while the microphone must stay closed."""
        return self._muted

    @property
    def talking(self) -> bool:
        """True while push-to-talk is held."""
        return self._talking

    def open(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Claim the button pins. Events go to ``loop`` (default: the running loop)."""
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        pins: dict[ButtonName, int | None] = {"mute": self._spec.mute_button,
                                              "push_to_talk": self._spec.push_to_talk_button,
                                              "confirm": self._spec.confirm_button}
        for name, pin in pins.items():
            if pin is None:
                continue
            # DigitalInputDevice rather than Button: Button's hold-detection thread would
            # delay close() by up to hold_time while a button is held.
            button = claim(
                functools.partial(DigitalInputDevice, pin,
                                  pull_up=self._spec.buttons_pull_up,
                                  bounce_time=self._spec.bounce_s, pin_factory=self._factory),
                what=f"gpio.status.{name}_button", pins={name: pin})
            button.when_activated = functools.partial(self._edge, name, True)
            button.when_deactivated = functools.partial(self._edge, name, False)
            self._buttons[name] = button
        if self._spec.mute_mode == "switch" and "mute" in self._buttons:
            self._muted = bool(self._buttons["mute"].is_active)
        if self._buttons and self._loop is None:
            log.warning("gpio.buttons_without_loop",
                        detail="button events are dropped until attach(loop) is called")

    def has(self, name: ButtonName) -> bool:
        """Whether the ``name`` button is configured."""
        pins = {"mute": self._spec.mute_button, "push_to_talk": self._spec.push_to_talk_button,
                "confirm": self._spec.confirm_button}
        return pins[name] is not None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver events to ``loop`` from now on."""
        self._loop = loop

    def close(self) -> None:
        for button in self._buttons.values():
            button.close()
        self._buttons.clear()

    def on_event(self, callback: Callable[[ButtonEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the loop for every event; returns an unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    async def events(self) -> AsyncIterator[ButtonEvent]:
        """Iterate events as they come; meant for one reader (use `on_event` for more).

        The queue is bounded: if nobody reads for a while the oldest events are dropped,
        since the current mute / talk state is what matters.
        """
        while True:
            yield await self._queue.get()

    # gpiozero's thread -> the loop
    def _edge(self, name: ButtonName, pressed: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(self._on_edge, name, pressed)

    def _on_edge(self, name: ButtonName, pressed: bool) -> None:
        if name == "mute":
            if self._spec.mute_mode == "switch":
                active = pressed
            elif pressed:
                active = not self._muted
            else:
                return  # toggle mode acts on the press only
            if active == self._muted:
                return
            self._muted = active
            log.info("gpio.mute", muted=active)
        elif name == "confirm":
            if not pressed:
                return
            active = True
            log.info("gpio.confirm_pressed")
        else:
            if pressed == self._talking:
                return
            self._talking = active = pressed
            log.info("gpio.push_to_talk", talking=active)
        event = ButtonEvent(name, active)
        if self._queue.full():
            self._queue.get_nowait()  # keep the newest: the current state matters most
        self._queue.put_nowait(event)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("gpio.button_callback_failed", button=name)
