"""Pins and names claimed twice: each pin can drive one thing, each name is one function.

The config layer reports these with the file's lines; the registry checks tools built in
code again before it claims anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.tools.kinds import KINDS
from agent.tools.option_reader import KeyPath, format_key
from agent.tools.spec import StatusGpioSpec, ToolSpec

__all__ = ["find_conflicts"]


def find_conflicts(
    tools: Sequence[tuple[int, ToolSpec]],
    status: StatusGpioSpec | None = None,
    *,
    tools_loc: KeyPath = ("tools",),
    status_loc: KeyPath = ("gpio", "status"),
) -> list[tuple[KeyPath, str]]:
    """``(key path, message)`` for every pin claimed after its first use (by a tool or the
    status GPIO) and every tool name used twice. ``tools`` pairs each tool with its index in
    the ``[[tools]]`` array."""
    uses: list[tuple[int, KeyPath]] = []
    for i, spec in tools:
        pin_key = KINDS[spec.kind].pin_key
        uses += [(pin, (*tools_loc, i, *pin_key(role))) for role, pin in spec.pins.items()]
    if status is not None:
        uses += [(pin, (*status_loc, *role.split(".")))
                 for role, pin in status.pin_roles().items()]
    first: dict[int, KeyPath] = {}
    found: list[tuple[KeyPath, str]] = []
    for pin, loc in uses:
        if pin in first:
            found.append((loc, f"GPIO{pin} is already used by {format_key(first[pin])}; "
                               "each pin can be claimed once"))
        else:
            first[pin] = loc
    names: dict[str, int] = {}
    for i, spec in tools:
        if spec.name in names:
            found.append(((*tools_loc, i, "name"), f'"{spec.name}" is already the name of '
                                                   f"{format_key((*tools_loc, names[spec.name]))}"))
        names.setdefault(spec.name, i)
    return found
