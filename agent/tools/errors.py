"""Exceptions of the tools layer.

Two families: tools that cannot be set up as given (`ToolSetupError`: a pin or a name claimed
twice, a custom handler that cannot be imported), raised before anything moves; and errors
met while serving a call (`ToolError` and its subclasses), whose message is what the model
reads in the function response. Problems in the config file itself are the config layer's,
reported through the reader a kind reads its keys with.
"""

from __future__ import annotations

__all__ = ["ArgumentError", "GpioError", "ToolError", "ToolSetupError"]


class ToolSetupError(ValueError):
    """The tools cannot be set up as given; the message names the key (``tools[2].handler:
    cannot import 'door'``), one line per problem. Whatever was claimed is released again."""


class ToolError(Exception):
    """A call could not be carried out; the message is written for the model to act on.

    Custom handlers raise it to answer with a clear ``{"error": ...}`` instead of a generic
    failure message.
    """


class ArgumentError(ToolError):
    """The model's arguments do not match the tool's declared schema or limits."""


class GpioError(ToolError):
    """A pin could not be claimed or driven (no GPIO here, pin busy, invalid pin)."""
