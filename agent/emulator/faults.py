"""Faults the emulator can inject, chosen per connection from a test or by a scenario."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """What goes wrong."""

    DROP = "drop"  # abort the TCP connection: no close frame
    CLOSE = "close"  # close with ``code`` and ``reason``
    HANDSHAKE_DELAY = "handshake_delay"  # answer the upgrade after ``seconds``
    HANDSHAKE_REFUSE = "handshake_refuse"  # answer the upgrade with HTTP ``status``
    STALL = "stall"  # stop reading (and sending) for ``seconds``, or until closed
    MALFORMED_JSON = "malformed_json"  # send a frame that is not JSON
    UNKNOWN_MESSAGE = "unknown_message"  # send a message with an unknown top-level key
    OVERSIZED_FRAME = "oversized_frame"  # send one ``size``-byte serverContent frame
    REPEAT_TOOL_CALL = "repeat_tool_call"  # send the next toolCall twice
    CANCEL_TOOL_CALL = "cancel_tool_call"  # cancel the next toolCall while it runs
    GO_AWAY = "go_away"  # goAway with ``seconds`` left, then close as at end of life


class Trigger(StrEnum):
    """When an armed fault fires on its connection."""

    NOW = "now"  # at once (on a connection not yet set up: right after setupComplete)
    REPLY = "reply"  # in the middle of the next model reply (after its first chunk)
    TOOL_CALL = "tool_call"  # right after the next toolCall is sent


HANDSHAKE_KINDS = frozenset({FaultKind.HANDSHAKE_DELAY, FaultKind.HANDSHAKE_REFUSE})
TOOL_KINDS = frozenset({FaultKind.REPEAT_TOOL_CALL, FaultKind.CANCEL_TOOL_CALL})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault. Build it with the class methods; ``at`` says when it fires."""

    kind: FaultKind
    at: Trigger = Trigger.NOW
    code: int = 1011
    reason: str = "Internal error encountered."
    status: int = 503
    seconds: float | None = None
    size: int = 1_200_000

    def __post_init__(self) -> None:
        if self.kind in TOOL_KINDS and self.at is Trigger.NOW:
            object.__setattr__(self, "at", Trigger.TOOL_CALL)

    @classmethod
    def drop(cls, at: Trigger = Trigger.NOW) -> Fault:
        """Abort the TCP connection without a close frame."""
        return cls(FaultKind.DROP, at)

    @classmethod
    def close(cls, code: int, reason: str = "", at: Trigger = Trigger.NOW) -> Fault:
        """Close the WebSocket with any code and reason."""
        return cls(FaultKind.CLOSE, at, code=code, reason=reason)

    @classmethod
    def refuse_handshake(cls, status: int = 503) -> Fault:
        """Answer the upgrade request with an HTTP error (401, 403, 429, 503 ...)."""
        return cls(FaultKind.HANDSHAKE_REFUSE, status=status)

    @classmethod
    def delay_handshake(cls, seconds: float) -> Fault:
        """Hold the upgrade response for ``seconds`` (scaled by ``time_scale``)."""
        return cls(FaultKind.HANDSHAKE_DELAY, seconds=seconds)

    @classmethod
    def stall(cls, seconds: float | None = None, at: Trigger = Trigger.NOW) -> Fault:
        """Stop reading from the socket for ``seconds`` (None: until the peer gives up)."""
        return cls(FaultKind.STALL, at, seconds=seconds)

    @classmethod
    def malformed_json(cls, at: Trigger = Trigger.NOW) -> Fault:
        """Send one frame that does not parse as JSON."""
        return cls(FaultKind.MALFORMED_JSON, at)

    @classmethod
    def unknown_message(cls, at: Trigger = Trigger.NOW) -> Fault:
        """Send a message whose only key is unknown to clients."""
        return cls(FaultKind.UNKNOWN_MESSAGE, at)

    @classmethod
    def oversized_frame(cls, size: int = 1_200_000, at: Trigger = Trigger.NOW) -> Fault:
        """Send one audio frame of about ``size`` bytes (clients refuse > 1 MiB)."""
        return cls(FaultKind.OVERSIZED_FRAME, at, size=size)

    @classmethod
    def repeat_tool_call(cls) -> Fault:
        """Send the next toolCall twice, with the same ids."""
        return cls(FaultKind.REPEAT_TOOL_CALL, Trigger.TOOL_CALL)

    @classmethod
    def cancel_tool_call(cls, after_s: float = 0.0) -> Fault:
        """Cancel the next toolCall ``after_s`` seconds after sending it."""
        return cls(FaultKind.CANCEL_TOOL_CALL, Trigger.TOOL_CALL, seconds=after_s)

    @classmethod
    def go_away(cls, seconds: float = 1.0, at: Trigger = Trigger.NOW) -> Fault:
        """Announce the end of the connection, then end it ``seconds`` later."""
        return cls(FaultKind.GO_AWAY, at, seconds=seconds)

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> Fault:
        """Build from a scenario table, e.g. ``{kind = "close", code = 1011, at = "reply"}``.

        Raises ValueError naming the bad key.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known - {"connection"}
        if unknown:
            raise ValueError(f"unknown fault key(s): {', '.join(sorted(unknown))}")
        try:
            kind = FaultKind(spec["kind"])
        except KeyError:
            raise ValueError("fault needs a 'kind'") from None
        except ValueError:
            choices = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"fault kind {spec['kind']!r} is not one of: {choices}") from None
        try:
            at = Trigger(spec.get("at", "now"))
        except ValueError:
            raise ValueError(
                f"fault 'at' {spec.get('at')!r} is not one of: now, reply, tool_call"
            ) from None
        args: dict[str, Any] = {}
        for name, typ in (("code", int), ("reason", str), ("status", int), ("size", int)):
            if name in spec:
                if not isinstance(spec[name], typ):
                    raise ValueError(f"fault '{name}' must be {typ.__name__}")
                args[name] = spec[name]
        if "seconds" in spec:
            if not isinstance(spec["seconds"], int | float):
                raise ValueError("fault 'seconds' must be a number")
            args["seconds"] = float(spec["seconds"])
        return cls(kind, at, **args)
