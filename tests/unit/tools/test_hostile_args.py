"""Arguments built to break validation: numbers beyond 64 bits, huge and deeply nested values,
patterns that backtrack for ever. Each call is answered as invalid arguments, quickly, and
its audit line is written, short, with a marker for what was cut."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.logs import configure_logging
from agent.tools.bounds import (
    MAX_DEPTH,
    MAX_STRING_CHARS,
    MAX_TOTAL_CHARS,
    MAX_VALUES,
    audit_view,
    check_bounds,
)
from agent.tools.errors import ArgumentError
from agent.tools.option_reader import format_key
from agent.tools.patterns import MAX_PATTERN_INPUT
from agent.tools.schema import check_schema, validate_arguments

PAN = {"name": "pan", "description": "Camera pan.", "kind": "servo", "pin": 13,
       "limits": [-45, 45]}


def _custom(module: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"name": "say", "description": "Say.", "kind": "custom", "handler": f"{module}:run",
            "parameters": {"type": "object", "properties": properties}}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("args", "fragment"), [
    ({"angle": 10**400}, "'angle' is a number beyond 64-bit integers"),
    ({"angle": 2**64}, "'angle' is a number beyond 64-bit integers"),
    ({"angle": -(2**63) - 1}, "'angle' is a number beyond 64-bit integers"),
    ({"angle": 1, "x": [0, {"y": 2**70}]}, "'x[1].y' is a number beyond 64-bit integers"),
    ({"angle": 1, "x": "y" * 3_000_000}, f"'x' is longer than {MAX_STRING_CHARS} characters"),
    ({"angle": 1, "x": list(range(10**6))}, f"more than {MAX_VALUES} values"),
    ({"angle": 1, "x": _nested(5000)}, f"nest deeper than {MAX_DEPTH} levels"),
    ({"angle": 1, **{f"k{i}": "v" * 1000 for i in range(80)}},
     f"more than {MAX_TOTAL_CHARS} characters"),
    ({"angle": 1, "k" * 300: 1}, "has a name longer than 256 characters"),
    ({"angle": 1, "x": {1: 2}}, "'x' has a name that is not text"),
    ({"angle": 1, "x": object()}, "'x' is not a JSON value"),
])
@pytest.mark.usefixtures("restore_logging")
async def test_arguments_beyond_the_bounds_are_invalid_and_audited(
        build: Any, args: dict[str, Any], fragment: str) -> None:
    registry = await build([PAN])
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    response = await registry.call("pan", args, call_id="c-1")
    assert set(response) == {"error"} and fragment in response["error"]
    assert "Nothing was changed" in response["error"]
    [line] = [x for x in stream.getvalue().splitlines() if "tool.actuated" in x]
    audit = json.loads(line)
    assert audit["outcome"] == "invalid" and audit["call_id"] == "c-1"
    assert len(line) < 8192


async def test_the_audit_line_is_a_bounded_view_with_markers(build: Any) -> None:
    registry = await build([PAN])
    with capture_logs() as logs:
        await registry.call("pan", {"angle": 1, "x": "y" * 3_145_728, "n": 10**400,
                                    "many": list(range(100))})
    [audit] = [e for e in logs if e["event"] == "tool.actuated"]
    args = audit["args"]
    assert args["x"] == "y" * 256 + "...(truncated, 3145728 bytes)"
    assert args["n"] == "<integer of 1329 bits>"
    assert args["many"][:32] == list(range(32))
    assert args["many"][32] == "...(truncated, 100 items)"


def test_audit_view_costs_no_more_than_its_view() -> None:
    huge = {f"k{i}": i for i in range(10**5)}
    view = audit_view({"a": huge, "b": _nested(5000)})
    assert len(view["a"]) == 33 and view["a"]["..."] == "(truncated, 100000 names)"
    assert "[...]" in json.dumps(view["b"])


async def test_an_unknown_name_is_shown_bounded(build: Any) -> None:
    registry = await build([PAN])
    response = await registry.call("x" * 100_000, {})
    assert "there is no function named" in response["error"]
    assert len(response["error"]) < 500
    assert "there is no function" in (await registry.call(["a"], {}))["error"]  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    {"n": 10**400}, {"n": 2**64}, {"w": "a" * 20_000}, {"w": _nested(100)},
])
async def test_a_custom_tool_never_sees_numbers_or_sizes_beyond_the_bounds(
        build: Any, custom_module: Any, args: dict[str, Any]) -> None:
    mod = custom_module("calls = []\ndef run(args, ctx):\n    calls.append(args)\n    return 1\n")
    registry = await build([_custom(mod, {"n": {"type": "integer"}, "w": {"type": "string"}})])
    response = await registry.call("say", args)
    assert "invalid arguments for say" in response["error"]
    import importlib

    assert importlib.import_module(mod).calls == []


# ------------------------------------------------------------------ patterns


def _in_thread(target: Any, seconds: float = 10.0) -> Any:
    """Run ``target`` in a thread and fail if it is still running after ``seconds`` (a
    backtracking match would run for hours)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(_capture(target)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "validation did not finish: a pattern ran unbounded"
    return out[0]


def _capture(target: Any) -> Any:
    try:
        return target()
    except ArgumentError as exc:
        return exc


def test_a_pattern_is_not_matched_once_the_length_has_failed() -> None:
    schema = {"type": "object", "properties": {"w": {
        "type": "string", "maxLength": 10, "pattern": "^([a-z]+ ?)+$"}}}
    result = _in_thread(lambda: validate_arguments(schema, {"w": "a" * 27 + "!"}))
    assert isinstance(result, ArgumentError)
    assert str(result) == "'w' must have at most 10 characters"


def test_a_backtracking_pattern_is_cut_off_by_the_time_budget() -> None:
    """``(a|aa)+`` passes the shape check but takes exponential time; the call is refused."""
    schema = {"type": "object", "properties": {"w": {
        "type": "string", "maxLength": 100, "pattern": "^(a|aa)+$"},
        "v": {"type": "array", "items": {"type": "string", "maxLength": 100,
                                          "pattern": "^(a|aa)+$"}}}}
    assert check_schema(schema, ("p",)) == []
    hostile = {"w": "a" * 60 + "!", "v": ["a" * 60 + "!"] * 50}
    result = _in_thread(lambda: validate_arguments(schema, hostile))
    assert isinstance(result, ArgumentError)
    assert "could not be checked against the pattern ^(a|aa)+$ in time" in str(result)
    assert validate_arguments(schema, {"w": "aaa"}) == {"w": "aaa"}


@pytest.mark.parametrize("pattern", [
    "^([a-z]+ ?)+$", "(a+)+$", "(a*)*b", r"^(\w+\s?)*$", "(.*a){12}", "((ab)*c)+",
    r"(?:x+y?)+", "(a+){,5}",
])
def test_nested_repetition_is_refused_at_config_time(pattern: str) -> None:
    schema = {"type": "object", "properties": {"w": {
        "type": "string", "maxLength": 64, "pattern": pattern}}}
    [(path, message)] = check_schema(schema, ("tools", 0, "parameters"))
    assert format_key(path) == "tools[0].parameters.properties.w.pattern"
    assert "exponential time" in message


@pytest.mark.parametrize(("extra", "ok"), [
    ({}, False), ({"maxLength": MAX_PATTERN_INPUT + 1}, False), ({"maxLength": 64}, True),
    ({"maxLength": MAX_PATTERN_INPUT}, True),
])
def test_a_pattern_needs_a_bounded_max_length(extra: dict[str, int], ok: bool) -> None:
    schema = {"type": "object", "properties": {"w": {
        "type": "string", "pattern": "^[a-z]+(-[a-z]+)?$", **extra}}}
    problems = check_schema(schema, ("p",))
    assert (problems == []) is ok
    if not ok:
        assert "needs maxLength of at most 1024" in problems[0][1]


@pytest.mark.parametrize("bound", [10**400, 2**63, float("inf"), float("nan")])
def test_schema_bounds_must_be_finite_numbers_within_64_bits(bound: float) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number", "maximum": bound}}}
    [(path, _)] = check_schema(schema, ("p",))
    assert format_key(path) == "p.properties.n.maximum"


def test_check_bounds_accepts_ordinary_arguments() -> None:
    check_bounds({"a": [1, 2.5, "x", None, True, {"b": -(2**63)}], "c": 2**63 - 1})
