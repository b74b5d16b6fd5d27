"""Scenarios: TOML files that script what the fake model says and does on each user turn.

Format (every key optional)::

    name = "lamp"
    default_reply = "You said: {text}"   # when no [[turn]] matches; {text} is the user's words,
                                         # {previous} their turn before (from the session's
                                         # memory: resumed, or given as context)

    [[turn]]                  # the first spoken utterance
    spoken = 1                # match by the order of spoken turns (1-based) ...
    said = "hello there"      # ... and what that utterance "said" (its input transcription)
    reply = "Hi! How can I help?"

    [[turn]]
    spoken = 2
    said = "switch the lamp on"
    reply = "The lamp is on."           # spoken after the function response arrives
    call = [{ name = "set_lamp", args = { action = "on" } }]

    [[turn]]
    text = "weather"          # match a typed (or transcribed) turn containing this, any case
    reply = "Sunny."
    fault = { kind = "drop", at = "reply" }   # drop the TCP connection mid-reply

    [[turn]]
    turn = 5                  # match the 5th user turn of any kind
    reply = "That was five."
    audio_s = 2.0             # length of the spoken reply (default: from the reply's length)

    [[fault]]                 # a fault for a given connection of the emulator (1-based)
    connection = 2
    kind = "close"            # drop, close, handshake_delay, handshake_refuse, stall,
    code = 1011               # malformed_json, unknown_message, oversized_frame,
    reason = "Internal error encountered."   # repeat_tool_call, cancel_tool_call, go_away
    at = "now"                # now, reply, tool_call

A turn's rule is the first ``[[turn]]`` whose ``spoken``, ``turn`` and ``text`` (those given)
all match. ``wait = false`` on a turn replies without waiting for the function responses.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.emulator.faults import Fault

_RULE_KEYS = frozenset(
    {"text", "spoken", "turn", "said", "reply", "call", "wait", "audio_s", "fault"}
)
_TOP_KEYS = frozenset({"name", "default_reply", "turn", "fault"})


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A function call the model makes."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do on a user turn that matches."""

    text: str | None = None
    spoken: int | None = None
    turn: int | None = None
    said: str | None = None
    reply: str | None = None
    calls: tuple[CallSpec, ...] = ()
    wait: bool = True
    audio_s: float | None = None
    fault: Fault | None = None

    def matches(self, text: str, spoken: int | None, turn: int) -> bool:
        """All given criteria hold; a rule without criteria never matches."""
        if self.text is None and self.spoken is None and self.turn is None:
            return False
        if self.spoken is not None and self.spoken != spoken:
            return False
        if self.turn is not None and self.turn != turn:
            return False
        return self.text is None or self.text.casefold() in text.casefold()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario; :data:`DEFAULT` echoes the user."""

    name: str = "default"
    default_reply: str = "You said: {text}"
    rules: tuple[Rule, ...] = ()
    faults: tuple[tuple[int, Fault], ...] = ()

    def transcript(self, spoken: int) -> str:
        """What the ``spoken``-th utterance said."""
        for rule in self.rules:
            if rule.spoken == spoken and rule.said is not None:
                return rule.said
        return f"spoken turn {spoken}"

    def match(self, text: str, spoken: int | None, turn: int) -> Rule | None:
        """The first rule for this user turn, if any."""
        for rule in self.rules:
            if rule.matches(text, spoken, turn):
                return rule
        return None

    def reply_text(self, rule: Rule | None, text: str, previous: str = "") -> str:
        """The reply's words for a turn; ``previous`` is the user's turn before it."""
        if rule is not None and rule.reply is not None:
            return rule.reply.replace("{previous}", previous)
        return self.default_reply.replace("{text}", text).replace("{previous}", previous)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a TOML scenario file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: {exc}") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<scenario>") -> Scenario:
        """Parse TOML text."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: {exc}") from None
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
        """Build from decoded TOML, checking every key."""
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ScenarioError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
        name = _typed(data, "name", str, source, "default")
        default_reply = _typed(data, "default_reply", str, source, "You said: {text}")
        rules = tuple(
            _rule(spec, f"{source}: turn[{i}]")
            for i, spec in enumerate(_tables(data, "turn", source))
        )
        faults = []
        for i, spec in enumerate(_tables(data, "fault", source)):
            where = f"{source}: fault[{i}]"
            connection = spec.get("connection")
            if not isinstance(connection, int) or connection < 1:
                raise ScenarioError(f"{where}.connection must be a connection number >= 1")
            try:
                faults.append((connection, Fault.from_mapping(spec)))
            except ValueError as exc:
                raise ScenarioError(f"{where}: {exc}") from None
        return cls(name, default_reply, rules, tuple(faults))


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{source}: '{key}' must be an array of tables ([[{key}]])")
    return value


def _typed(data: Mapping[str, Any], key: str, typ: type, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is not None and not isinstance(value, typ):
        raise ScenarioError(f"{where}.{key} must be a {typ.__name__}")
    return value


def _rule(spec: Mapping[str, Any], where: str) -> Rule:
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("spoken", "turn"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ScenarioError(f"{where}.{key} must be an integer >= 1")
    calls_raw = spec.get("call", [])
    if isinstance(calls_raw, dict):
        calls_raw = [calls_raw]
    if not isinstance(calls_raw, list):
        raise ScenarioError(f"{where}.call must be a table or a list of tables")
    calls = []
    for j, call in enumerate(calls_raw):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ScenarioError(f"{where}.call[{j}] needs a name")
        args = call.get("args", {})
        if not isinstance(args, dict):
            raise ScenarioError(f"{where}.call[{j}].args must be a table")
        calls.append(CallSpec(call["name"], args))
    audio_s = spec.get("audio_s")
    if audio_s is not None and (not isinstance(audio_s, int | float) or audio_s <= 0):
        raise ScenarioError(f"{where}.audio_s must be a positive number")
    fault = None
    if "fault" in spec:
        if not isinstance(spec["fault"], dict):
            raise ScenarioError(f"{where}.fault must be a table")
        try:
            fault = Fault.from_mapping(spec["fault"])
        except ValueError as exc:
            raise ScenarioError(f"{where}.fault: {exc}") from None
    return Rule(
        text=_typed(spec, "text", str, where, None),
        spoken=spec.get("spoken"),
        turn=spec.get("turn"),
        said=_typed(spec, "said", str, where, None),
        reply=_typed(spec, "reply", str, where, None),
        calls=tuple(calls),
        wait=_typed(spec, "wait", bool, where, True),
        audio_s=float(audio_s) if audio_s is not None else None,
        fault=fault,
    )


DEFAULT = Scenario()
