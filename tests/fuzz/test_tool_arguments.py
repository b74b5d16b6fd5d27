"""`ToolRegistry.call` under hostile calls, for one tool of every kind on mock pins: any name,
any JSON-like arguments (integers of any size, floats that are not finite, huge strings, deep
nesting, patterns that backtrack). Every call ends within a bound with a clean payload, one
``{"result": ...}`` or ``{"error": "..."}`` that JSON can carry, and is audited."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from agent.config.gpio import parse_tools
from agent.tools.kinds import KINDS
from agent.tools.registry import ToolRegistry

CALL_BOUND_S = 5.0  # far above any clean answer; a stalled validation would exceed it

HANDLER = """
def run(args, ctx):
    return {"echo": args}
"""


def _tools(handler_module: str) -> list[dict[str, Any]]:
    quick = {"rate_limit": False}
    return [
        {"name": "light", "kind": "digital_output", "pin": 17, **quick},
        {"name": "door", "kind": "pulse", "pin": 18, "max_duration_s": 0.02,
         "min_duration_s": 0.001, "duration_s": 0.01, **quick},
        {"name": "fan", "kind": "pwm", "pin": 12, **quick},
        {"name": "pan", "kind": "servo", "pin": 13, "limits": [-45, 45], **quick},
        {"name": "lamp", "kind": "rgb_led", "pins": {"red": 9, "green": 10, "blue": 11}, **quick},
        {"name": "window", "kind": "digital_input", "pin": 4, **quick},
        {"name": "beep", "kind": "buzzer", "pin": 23, "tone": True, "max_duration_s": 0.02,
         "duration_s": 0.01, **quick},
        {"name": "say", "kind": "custom", "handler": f"{handler_module}:run", **quick,
         "parameters": {"type": "object", "properties": {
             "w": {"type": "string", "maxLength": 64, "pattern": "^(a|aa)+$"},
             "n": {"type": "integer", "minimum": -5, "maximum": 5},
             "x": {"type": "number"},
             "tags": {"type": "array", "items": {"type": "string", "maxLength": 200,
                                                 "pattern": "^[a-z]+(-[a-z]+)*$"}},
             "any": {"type": "object"}}}},
    ]


NAMES = ["light", "door", "fan", "pan", "lamp", "window", "beep", "say"]


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[asyncio.Runner, ToolRegistry]]:
    folder = Path(tempfile.mkdtemp(prefix="edge-agent-fuzz-tools-"))
    module = f"edge_fuzz_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(HANDLER)
    sys.path.insert(0, str(folder))
    factory = MockFactory(pin_class=MockPWMPin)
    specs = parse_tools([{"description": "d", **tool} for tool in _tools(module)])
    assert {spec.kind for spec in specs} == set(KINDS), "one tool of every kind"
    runner = asyncio.Runner()
    registry = ToolRegistry(specs, factory)
    runner.run(_open(registry))
    yield runner, registry
    registry.close()
    runner.close()
    factory.reset()
    factory.close()
    sys.path.remove(str(folder))


async def _open(registry: ToolRegistry) -> None:
    registry.open(asyncio.get_running_loop())


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**60, max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64 - 1, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["a" * 27 + "!", "a" * 63 + "!", "a" * 65, "x" * 20_000, "on", "off",
                     "toggle", "red", "#ff0000", "a-b-c" * 40 + "!"]),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)
KEYS = st.sampled_from(["action", "duration_s", "value", "angle", "colour", "frequency_hz",
                        "w", "n", "x", "tags", "any", "extra"])
ARGS = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=5),
    st.dictionaries(st.text(max_size=300), VALUES, max_size=3),
    VALUES,
    st.sampled_from([{"w": "a" * 60 + "!"}, {"tags": ["a" * 199 + "!"] * 40},
                     {"any": {"deep": _deep(40)}}, {"x": _deep(5000)}]),
)


def _call(harness: tuple[asyncio.Runner, ToolRegistry], name: Any, args: Any) -> dict[str, Any]:
    runner, registry = harness

    async def call() -> dict[str, Any]:
        async with asyncio.timeout(CALL_BOUND_S):
            return await registry.call(name, args, call_id="fuzz")

    with capture_logs() as logs:
        payload = runner.run(call())
    assert [e["outcome"] for e in logs if e["event"] == "tool.actuated"] != []
    return payload


def _clean(payload: dict[str, Any]) -> None:
    assert isinstance(payload, dict) and len(payload) == 1
    [(key, value)] = payload.items()
    assert key in ("result", "error")
    if key == "error":
        assert isinstance(value, str) and value and "inside the agent" not in value
    orjson.dumps(payload)  # what the wire encoder will be handed


@given(st.sampled_from(NAMES), ARGS)
def test_every_kind_answers_hostile_arguments_cleanly(
        harness: tuple[asyncio.Runner, ToolRegistry], name: str, args: Any) -> None:
    _clean(_call(harness, name, args))


@given(st.one_of(st.text(max_size=200), st.sampled_from(["x" * 100_000, ""]), VALUES), ARGS)
def test_any_name_is_answered_cleanly(harness: tuple[asyncio.Runner, ToolRegistry],
                                      name: Any, args: Any) -> None:
    payload = _call(harness, name, args)
    _clean(payload)
    if name not in NAMES:
        assert len(payload["error"]) < 1000


@given(st.one_of(st.text(max_size=60),
                 st.text(alphabet="()[]{}+*?|\\^$.,:<>=!Pa1-", max_size=60)),
       st.one_of(st.none(), st.integers()))
def test_any_declared_pattern_is_judged_without_an_exception(pattern: str,
                                                             max_length: int | None) -> None:
    from agent.tools.patterns import pattern_problem

    problem = pattern_problem(pattern, max_length)
    assert problem is None or isinstance(problem, str)
