"""Argument validation against a function declaration's JSON schema.

The model's arguments are untrusted input that moves real things, so every call is checked
here before any pin changes. Only the subset of JSON schema that Gemini function
declarations accept (an OpenAPI-style subset) is supported; `check_schema` rejects anything
else in a declared schema at config time, so a schema the validator would silently ignore
never reaches the model.

Arguments are checked against fixed bounds first (`agent.tools.bounds`: size, nesting, text
length, numbers JSON holds), so nothing below ever works on unbounded input; a ``pattern`` is
matched only on a string that passed its length checks, within a time budget
(`agent.tools.patterns`).

Error messages name the argument, what was expected and what was received, so the model can
correct its call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from agent.tools.bounds import INT64, check_bounds
from agent.tools.errors import ArgumentError
from agent.tools.option_reader import KeyPath
from agent.tools.patterns import MatchBudget, pattern_problem

__all__ = ["SUPPORTED_KEYWORDS", "check_schema", "describe", "validate_arguments"]

_TYPES = ("object", "string", "number", "integer", "boolean", "array")

# Keywords we enforce, plus annotations that carry no constraint.
_CONSTRAINTS = frozenset(
    {
        "type", "properties", "required", "enum", "items", "minimum", "maximum",
        "minLength", "maxLength", "minItems", "maxItems", "pattern", "nullable",
    }
)
_ANNOTATIONS = frozenset({"description", "title", "format", "propertyOrdering", "example"})
SUPPORTED_KEYWORDS = _CONSTRAINTS | _ANNOTATIONS


def _type_of(schema: Mapping[str, Any]) -> str | None:
    t = schema.get("type")
    return t.lower() if isinstance(t, str) else None


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def describe(schema: Mapping[str, Any]) -> str:
    """A short phrase for what a schema accepts (``a number from 0 to 1``)."""
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    t = _type_of(schema) or "value"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    article = "an" if t[0] in "aeiou" else "a"
    if t in ("number", "integer") and lo is not None and hi is not None:
        return f"{article} {t} from {_num(lo)} to {_num(hi)}"
    if t in ("number", "integer") and lo is not None:
        return f"{article} {t} of at least {_num(lo)}"
    if t in ("number", "integer") and hi is not None:
        return f"{article} {t} of at most {_num(hi)}"
    return f"{article} {t}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bound(value: Any) -> bool:
    """A number a schema may bound by: finite, and an integer within 64 bits."""
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_number(value) and INT64[0] <= value <= INT64[1]


def validate_arguments(schema: Mapping[str, Any] | None, args: Any) -> dict[str, Any]:
    """Check the model's ``args`` against an object ``schema``; return a normalised copy.

    ``schema`` None means the function takes no arguments. Integral floats are accepted for
    ``integer`` (models often send ``5.0``) and converted. Raises `ArgumentError` listing
    every problem found.
    """
    if args is None:
        args = {}
    check_bounds(args)
    if not isinstance(args, Mapping):
        raise ArgumentError(f"arguments must be an object with named fields (got {_show(args)})")
    if schema is None:
        if args:
            names = ", ".join(repr(k) for k in args)
            raise ArgumentError(f"this function takes no arguments (got {names})")
        return {}
    problems: list[str] = []
    out = _check(schema, args, "", _Checks(problems, MatchBudget()))
    if problems:
        raise ArgumentError("; ".join(problems))
    assert isinstance(out, dict)
    return out


def _label(path: str) -> str:
    return f"'{path}'" if path else "the arguments"


class _Checks:
    """What one validation collects and spends: the problems found, the pattern time left."""

    def __init__(self, problems: list[str], budget: MatchBudget) -> None:
        self.problems = problems
        self.budget = budget


def _check(schema: Mapping[str, Any], value: Any, path: str, checks: _Checks) -> Any:
    problems = checks.problems
    if value is None and schema.get("nullable") is True:
        return None
    t = _type_of(schema)
    where = _label(path)
    if t == "object":
        return _check_object(schema, value, path, checks)
    if t == "array":
        return _check_array(schema, value, path, checks)
    if t in ("number", "integer"):
        if not _is_number(value) or not math.isfinite(value):
            problems.append(f"{where} must be {describe(schema)} (got {_show(value)})")
            return value
        if t == "integer":
            if isinstance(value, float) and not value.is_integer():
                problems.append(f"{where} must be a whole number (got {_show(value)})")
                return value
            value = int(value)
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.append(f"{where} must be {describe(schema)} (got {_show(value)})")
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{where} must be {describe(schema)} (got {_show(value)})")
            return value
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if lo is not None and len(value) < lo:
            problems.append(f"{where} must have at least {lo} characters")
        elif hi is not None and len(value) > hi:
            problems.append(f"{where} must have at most {hi} characters")
        elif isinstance(pattern := schema.get("pattern"), str):
            # Only on text that passed its length checks, and within the call's time budget.
            matched = checks.budget.search(pattern, value)
            if matched is None:
                problems.append(f"{where} could not be checked against the pattern {pattern} "
                                "in time; send a shorter, plainer value")
            elif not matched:
                problems.append(f"{where} must match the pattern {pattern} "
                                f"(got {_show(value)})")
    elif t == "boolean" and not isinstance(value, bool):
        problems.append(f"{where} must be true or false (got {_show(value)})")
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        problems.append(f"{where} must be {describe(schema)} (got {_show(value)})")
    return value


def _check_object(schema: Mapping[str, Any], value: Any, path: str, checks: _Checks) -> Any:
    problems = checks.problems
    if not isinstance(value, Mapping):
        problems.append(f"{_label(path)} must be an object (got {_show(value)})")
        return value
    props: Mapping[str, Any] = schema.get("properties") or {}
    out: dict[str, Any] = {}
    prefix = f"{path}." if path else ""
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"missing required argument '{prefix}{name}' "
                            f"({describe(props.get(name, {}))})")
    extra = [k for k in value if k not in props]
    if extra:
        known = ", ".join(props) or "nothing"
        for name in extra:
            problems.append(f"unexpected argument '{prefix}{name}' (this takes: {known})")
    for name, sub in props.items():
        if name in value:
            out[name] = _check(sub, value[name], f"{prefix}{name}", checks)
    return out


def _check_array(schema: Mapping[str, Any], value: Any, path: str, checks: _Checks) -> Any:
    problems = checks.problems
    if not isinstance(value, list | tuple):
        problems.append(f"{_label(path)} must be a list (got {_show(value)})")
        return value
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if lo is not None and len(value) < lo:
        problems.append(f"{_label(path)} must have at least {lo} items")
    if hi is not None and len(value) > hi:
        problems.append(f"{_label(path)} must have at most {hi} items")
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return list(value)
    return [_check(items, v, f"{path}[{i}]", checks) for i, v in enumerate(value)]


def check_schema(schema: Any, loc: KeyPath) -> list[tuple[KeyPath, str]]:
    """``(key path, message)`` for each problem with a declared parameters schema (custom
    tools) at ``loc``; empty when it is usable.

    The top level must be an object schema. Unknown keywords are reported, because the
    validator would not enforce them and the model would be told about limits nobody checks.
    """
    problems: list[tuple[KeyPath, str]] = []
    if not isinstance(schema, Mapping):
        return [(loc, "must be a table (a JSON schema object)")]
    if _type_of(schema) != "object":
        problems.append(((*loc, "type"), 'the top level must have type = "object"'))
    _check_schema_node(schema, loc, problems)
    return problems


def _check_schema_node(schema: Mapping[str, Any], loc: KeyPath,
                       out: list[tuple[KeyPath, str]]) -> None:
    for key in schema:
        if key not in SUPPORTED_KEYWORDS:
            out.append(((*loc, key), "unsupported schema keyword; supported: "
                        + ", ".join(sorted(SUPPORTED_KEYWORDS))))
    t = _type_of(schema)
    if t not in _TYPES:
        out.append(((*loc, "type"), "must be one of " + ", ".join(_TYPES)))
    for key in ("minimum", "maximum"):
        if key in schema and not _is_bound(schema[key]):
            out.append(((*loc, key), "must be a number (finite, within 64-bit integers)"))
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        v = schema.get(key)
        if key in schema and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            out.append(((*loc, key), "must be a whole number >= 0"))
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        out.append(((*loc, "enum"), "must be a non-empty list"))
    if "pattern" in schema:
        problem = pattern_problem(schema["pattern"], schema.get("maxLength"))
        if problem is not None:
            out.append(((*loc, "pattern"), problem))
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, Mapping):
            out.append(((*loc, "properties"), "must be a table"))
            props = {}
        for name, sub in props.items():
            if isinstance(sub, Mapping):
                _check_schema_node(sub, (*loc, "properties", name), out)
            else:
                out.append(((*loc, "properties", name), "must be a table"))
    required = schema.get("required")
    if required is not None:
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            out.append(((*loc, "required"), "must be a list of property names"))
        else:
            for name in required:
                if not isinstance(props, Mapping) or name not in props:
                    out.append(((*loc, "required"),
                                f"names '{name}', which is not in properties"))
    items = schema.get("items")
    if items is not None:
        if isinstance(items, Mapping):
            _check_schema_node(items, (*loc, "items"), out)
        else:
            out.append(((*loc, "items"), "must be a table"))
