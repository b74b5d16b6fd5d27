"""Typed GPIO and tool declarations: what the tools layer is built from.

The config file's ``[gpio]`` table (pin factory, disconnect watchdog, the agent's own status
LEDs and buttons under ``[gpio.status]``) and its ``[[tools]]``, one per function the model
may call, become a `GpioConfig` (``agent.config.gpio`` reads them)::

    [gpio]
    pin_factory = "mock"              # "default" (lgpio on a Pi), "lgpio" or "mock"
    chip = "auto"                     # lgpio gpiochip number, or "auto" (found by label)
    safe_after_disconnect_s = 30.0    # pins go safe when the session is gone this long

    [gpio.status]
    leds = { connected = 5, listening = 6, speaking = 13, error = 19 }
    mute_button = 20                  # the mic stops while muted
    push_to_talk_button = 21
    confirm_button = 16               # carries out a tool's request waiting for confirmation

    [[tools]]
    name = "porch_light"
    description = "Switch the porch light on or off."
    kind = "digital_output"
    pin = 17
    rate_limit = { calls = 10, per_s = 60 }

Pins are BCM GPIO numbers of the 40-pin header (0..27); a pin used twice anywhere is an error
(`agent.tools.claims`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from agent.tools.options import ToolOptions

__all__ = [
    "BEHAVIORS",
    "DEFAULT_RATE_LIMIT",
    "SCHEDULINGS",
    "STATUS_LEDS",
    "Behavior",
    "GpioConfig",
    "McpServerSpec",
    "PinFactoryKind",
    "RateLimit",
    "Scheduling",
    "StatusGpioSpec",
    "ToolSpec",
]

PinFactoryKind = Literal["default", "lgpio", "mock"]
Behavior = Literal["BLOCKING", "NON_BLOCKING"]
BEHAVIORS: tuple[str, ...] = get_args(Behavior)
Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]
SCHEDULINGS: tuple[str, ...] = get_args(Scheduling)
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

    ``behavior`` is declared to the model for every tool: ``BLOCKING`` (the model waits for
    the result) or ``NON_BLOCKING`` (it goes on talking while the call runs). ``scheduling``
    (non-blocking tools only) says what the model does with the result when it comes:
    ``INTERRUPT`` what it is saying, wait until it is idle (``WHEN_IDLE``), or take it in
    silently (``SILENT``). With ``confirm`` the tool acts only on a second call with the same
    arguments within ``confirm_window_s`` (`agent.tools.confirm`).
    """

    name: str
    description: str
    kind: str  # a key of agent.tools.kinds.KINDS
    pins: Mapping[str, int]
    options: ToolOptions
    parameters: Mapping[str, Any] | None
    active_low: bool = False
    safe_state: str | float | None = None
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT
    timeout_s: float = 2.0
    behavior: Behavior = "BLOCKING"
    scheduling: Scheduling | None = None
    confirm: bool = False
    confirm_window_s: float = 30.0

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
    confirm_button: int | None = None
    buttons_pull_up: bool = True
    bounce_s: float | None = 0.05

    def pin_roles(self) -> dict[str, int]:
        """Every claimed pin by role (``leds.connected``, ``mute_button``, ...)."""
        roles = {f"leds.{name}": pin for name, pin in self.leds.items()}
        if self.mute_button is not None:
            roles["mute_button"] = self.mute_button
        if self.push_to_talk_button is not None:
            roles["push_to_talk_button"] = self.push_to_talk_button
        if self.confirm_button is not None:
            roles["confirm_button"] = self.confirm_button
        return roles


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """``command`` (a stdio server the agent starts) or ``url`` (streamable HTTP, with
    ``headers``). Its tools are declared as ``prefix`` + the tool's name, those in ``allow``
    only when it is given."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""
    allow: tuple[str, ...] | None = None
    timeout_s: float = 10.0
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT
    behavior: Behavior = "BLOCKING"
    scheduling: Scheduling | None = None
    secret_file: Path | None = None
    """A bearer token sent as ``Authorization`` (HTTP servers); read when connecting."""
    confirm: bool | tuple[str, ...] = False
    """Every tool (True) or the tools so named by the server act only when confirmed."""
    confirm_window_s: float = 30.0

    def needs_confirmation(self, server_name: str) -> bool:
        """Whether the server's tool ``server_name`` waits for the user's confirmation."""
        return self.confirm is True or (
            isinstance(self.confirm, tuple) and server_name in self.confirm)


@dataclass(frozen=True, slots=True)
class GpioConfig:
    """Everything the tools layer needs from the config file."""

    pin_factory: PinFactoryKind = "default"
    chip: int | Literal["auto"] = "auto"
    safe_after_disconnect_s: float = 30.0
    status: StatusGpioSpec | None = None
    tools: tuple[ToolSpec, ...] = ()
    mcp_servers: tuple[McpServerSpec, ...] = ()
