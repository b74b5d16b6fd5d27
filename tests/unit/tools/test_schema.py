"""Argument validation against declared schemas, and colour parsing."""

from __future__ import annotations

from typing import Any

import pytest

from agent.tools.colour import parse_colour, to_hex
from agent.tools.errors import ArgumentError
from agent.tools.option_reader import format_key
from agent.tools.schema import check_schema, validate_arguments

SCHEMA: dict[str, Any] = {
    "type": "OBJECT",  # the API's upper-case spelling is accepted as well
    "properties": {
        "mode": {"type": "string", "enum": ["eco", "boost"]},
        "level": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "enabled": {"type": "boolean"},
        "label": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
        "zones": {"type": "array", "items": {"type": "integer", "minimum": 0},
                  "minItems": 1, "maxItems": 2},
        "target": {"type": "object", "properties": {"x": {"type": "number"}},
                   "required": ["x"]},
        "note": {"type": "string", "nullable": True},
    },
    "required": ["mode"],
}


def test_valid_arguments_come_back_normalised() -> None:
    args = {"mode": "eco", "level": 3.0, "ratio": 1, "enabled": False, "label": "abc",
            "zones": [0, 2.0], "target": {"x": -1.5}, "note": None}
    out = validate_arguments(SCHEMA, args)
    assert out == {"mode": "eco", "level": 3, "ratio": 1, "enabled": False, "label": "abc",
                   "zones": [0, 2], "target": {"x": -1.5}, "note": None}
    assert isinstance(out["level"], int)
    assert out is not args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument 'mode' (one of \"eco\", \"boost\")"),
        ({"mode": "turbo"}, "'mode' must be one of \"eco\", \"boost\" (got \"turbo\")"),
        ({"mode": "eco", "level": 0}, "'level' must be an integer from 1 to 5 (got 0)"),
        ({"mode": "eco", "level": 2.5}, "'level' must be a whole number (got 2.5)"),
        ({"mode": "eco", "level": "3"}, "'level' must be an integer from 1 to 5 (got \"3\")"),
        ({"mode": "eco", "ratio": True}, "'ratio' must be a number from 0 to 1 (got true)"),
        ({"mode": "eco", "ratio": float("inf")}, "'ratio' must be a number from 0 to 1"),
        ({"mode": "eco", "enabled": "yes"}, "'enabled' must be true or false (got \"yes\")"),
        ({"mode": "eco", "label": "a"}, "'label' must have at least 2 characters"),
        ({"mode": "eco", "label": "abcde"}, "'label' must have at most 4 characters"),
        ({"mode": "eco", "label": "AB"}, "'label' must match the pattern ^[a-z]+$"),
        ({"mode": "eco", "zones": []}, "'zones' must have at least 1 items"),
        ({"mode": "eco", "zones": [1, 2, 3]}, "'zones' must have at most 2 items"),
        ({"mode": "eco", "zones": [-1]}, "'zones[0]' must be an integer of at least 0"),
        ({"mode": "eco", "zones": 3}, "'zones' must be a list (got 3)"),
        ({"mode": "eco", "target": {}}, "missing required argument 'target.x' (a number)"),
        ({"mode": "eco", "target": {"x": 1, "y": 2}}, "unexpected argument 'target.y'"),
        ({"mode": "eco", "note": 5}, "'note' must be a string (got 5)"),
        ({"mode": "eco", "speed": 9}, "unexpected argument 'speed' (this takes: mode, level, "),
    ],
)
def test_each_violation_is_named(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(SCHEMA, args)
    assert message in str(info.value)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(SCHEMA, {"level": 9, "extra": 1})
    text = str(info.value)
    assert "missing required argument 'mode'" in text
    assert "unexpected argument 'extra'" in text
    assert "'level' must be an integer from 1 to 5 (got 9)" in text


def test_functions_without_parameters_take_nothing() -> None:
    assert validate_arguments(None, None) == {}
    assert validate_arguments(None, {}) == {}
    with pytest.raises(ArgumentError, match="takes no arguments"):
        validate_arguments(None, {"x": 1})


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(SCHEMA, {"mode": "x" * 500})
    assert len(str(info.value)) < 120


def test_check_schema_accepts_the_supported_subset() -> None:
    assert check_schema(SCHEMA, ("p",)) == []


def test_check_schema_rejects_what_would_not_be_enforced() -> None:
    problems = check_schema({"type": "array", "items": 3, "minItems": -1, "anyOf": [],
                             "pattern": "("}, ("tools", 0, "parameters"))
    assert [format_key(path) for path, _ in problems] == [
        "tools[0].parameters.type",
        "tools[0].parameters.anyOf",
        "tools[0].parameters.minItems",
        "tools[0].parameters.pattern",
        "tools[0].parameters.items",
    ]
    [(_, message)] = check_schema("object", ("p",))
    assert message.startswith("must be a table")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("red", "#ff0000"),
        ("Light Blue", "#add8e6"),
        ("warm white", "#ffb46b"),
        ("OFF", "#000000"),
        ("#12abEF", "#12abef"),
        ("#f80", "#ff8800"),
        ("0,128,255", "#0080ff"),
        ("(10, 20, 30)", "#0a141e"),
    ],
)
def test_colours(text: str, expected: str) -> None:
    assert to_hex(parse_colour(text)) == expected


@pytest.mark.parametrize("text", ["blurple", "256,0,0", "#12345", "1,2", ""])
def test_not_colours(text: str) -> None:
    with pytest.raises(ArgumentError, match="is not a colour I know; use a colour name"):
        parse_colour(text)
