"""Function declarations and GPIO handlers for the model's tool calls.

Start from `ToolRegistry` (declarations, validated dispatch, safe states) built from the
config parsed by `parse_gpio` (or `parse_tools` / `parse_status_gpio`). Hardware goes through
gpiozero: lgpio on a Pi, mock pins anywhere else (``pin_factory = "mock"``).
"""

from agent.tools.custom import ToolContext
from agent.tools.errors import ArgumentError, ConfigProblem, GpioError, ToolConfigError, ToolError
from agent.tools.pins import find_header_chip, make_pin_factory
from agent.tools.registry import PinChange, ToolRegistry
from agent.tools.spec import (
    GpioConfig,
    RateLimit,
    StatusGpioSpec,
    ToolSpec,
    parse_gpio,
    parse_status_gpio,
    parse_tools,
)
from agent.tools.status import ButtonEvent, ControlButtons, StatusIndicators

__all__ = [
    "ArgumentError",
    "ButtonEvent",
    "ConfigProblem",
    "ControlButtons",
    "GpioConfig",
    "GpioError",
    "PinChange",
    "RateLimit",
    "StatusGpioSpec",
    "StatusIndicators",
    "ToolConfigError",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "find_header_chip",
    "make_pin_factory",
    "parse_gpio",
    "parse_status_gpio",
    "parse_tools",
]
