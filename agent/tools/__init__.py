"""Function declarations and GPIO handlers for the model's tool calls.

Start from `ToolRegistry` (declarations, validated dispatch, safe states) built from a
`GpioConfig` (``agent.config`` reads one from the config file). The kinds of tool are
registered in `KINDS`. Hardware goes through gpiozero: lgpio on a Pi, mock pins anywhere else
(``pin_factory = "mock"``).
"""

from agent.tools.custom import ToolContext
from agent.tools.errors import ArgumentError, GpioError, ToolError, ToolSetupError
from agent.tools.kinds import KINDS, ToolKind
from agent.tools.pins import find_header_chip, make_pin_factory
from agent.tools.registry import PinChange, ToolRegistry
from agent.tools.spec import GpioConfig, RateLimit, StatusGpioSpec, ToolSpec
from agent.tools.status import ButtonEvent, ControlButtons, StatusIndicators

__all__ = [
    "KINDS",
    "ArgumentError",
    "ButtonEvent",
    "ControlButtons",
    "GpioConfig",
    "GpioError",
    "PinChange",
    "RateLimit",
    "StatusGpioSpec",
    "StatusIndicators",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "ToolRegistry",
    "ToolSetupError",
    "ToolSpec",
    "find_header_chip",
    "make_pin_factory",
]
