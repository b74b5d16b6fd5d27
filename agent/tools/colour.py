"""Colour strings from the model or the config -> RGB levels for an RGB LED.

Accepted: a CSS colour name (``orange``, ``"light blue"``), ``off``, ``#rrggbb``, ``#rgb``,
or ``r,g,b`` with each channel 0..255.
"""

from __future__ import annotations

import re

from colorzero.tables import NAMED_COLORS  # type: ignore[import-untyped]

from agent.tools.errors import ArgumentError

__all__ = ["COLOUR_HELP", "parse_colour", "to_hex"]

RGB = tuple[float, float, float]

COLOUR_HELP = "a colour name (e.g. red, orange, warm white), off, #rrggbb, or r,g,b with 0..255"

_EXTRA: dict[str, str] = {"off": "#000000", "warmwhite": "#ffb46b", "coolwhite": "#e6f0ff"}
_HEX6 = re.compile(r"#?([0-9a-f]{6})")
_HEX3 = re.compile(r"#([0-9a-f]{3})")
_TRIPLE = re.compile(r"\(?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)?")


def _from_hex(digits: str) -> RGB:
    r, g, b = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b)


def parse_colour(text: str) -> RGB:
    """Parse a colour; raise `ArgumentError` saying what is accepted when it is not one."""
    s = text.strip().lower()
    name = re.sub(r"[\s_-]+", "", s)
    hex_code = _EXTRA.get(name) or NAMED_COLORS.get(name)
    if isinstance(hex_code, str):
        return _from_hex(hex_code[1:])
    if m := _HEX6.fullmatch(s):
        return _from_hex(m.group(1))
    if m := _HEX3.fullmatch(s):
        return _from_hex("".join(c * 2 for c in m.group(1)))
    if m := _TRIPLE.fullmatch(s):
        channels = [int(g) for g in m.groups()]
        if all(c <= 255 for c in channels):
            return (channels[0] / 255, channels[1] / 255, channels[2] / 255)
    raise ArgumentError(f"'{text[:40]}' is not a colour I know; use {COLOUR_HELP}")


def to_hex(rgb: RGB) -> str:
    """``(1.0, 0.5, 0.0)`` -> ``#ff8000``."""
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)
