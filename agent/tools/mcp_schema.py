"""An MCP tool's ``inputSchema`` (full JSON Schema) as a Live API function's parameters.

Function declarations take an OpenAPI-style subset (the one `agent.tools.schema` validates).
What can be said in it is translated: ``$ref`` into ``$defs``/``definitions`` is inlined,
``const`` becomes a one-value ``enum``, a ``["T", "null"]`` type or an ``anyOf`` of a schema
and ``null`` (pydantic's ``Optional``) becomes that schema with ``nullable``, an ``allOf`` of
one schema is that schema. Annotations the subset lacks (``default``, ``examples``,
``$schema``, ...) are left out, and so are constraints only the server can check
(``additionalProperties``, a ``pattern`` too costly to match here): the MCP server validates
every call again, so leaving them out loosens nothing that matters; they are listed in
`Converted.dropped` for the log. What would change the meaning (``oneOf``, any other
``anyOf``, ``not``, type unions, exclusive bounds, recursive ``$ref``) is a `SchemaError`
naming the place, and the tool is not declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.tools.patterns import pattern_problem
from agent.tools.schema import SUPPORTED_KEYWORDS, check_schema

__all__ = ["MAX_REF_DEPTH", "Converted", "SchemaError", "convert_input_schema"]

MAX_REF_DEPTH = 16
"""The deepest chain of ``$ref`` inlined (a schema is a few levels deep)."""

_DROPPED = frozenset({
    "$schema", "$id", "$comment", "default", "examples", "readOnly", "writeOnly",
    "deprecated", "additionalProperties", "unevaluatedProperties", "contentMediaType",
    "contentEncoding", "$defs", "definitions",
})
_MEANING = frozenset({
    "oneOf", "not", "if", "then", "else", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "patternProperties", "propertyNames", "dependentRequired",
    "dependentSchemas", "prefixItems", "contains", "uniqueItems",
})
_CHILD_MAPS = ("properties",)
_CHILD_ONE = ("items",)


class SchemaError(ValueError):
    """The schema says something function declarations cannot; the message names where."""


@dataclass(frozen=True, slots=True)
class Converted:
    """``parameters`` for the declaration (None: the function takes no arguments) and the
    keywords left out, by place (``properties.q.default``)."""

    parameters: dict[str, Any] | None
    dropped: list[str] = field(default_factory=list)


def convert_input_schema(schema: Any) -> Converted:
    """Translate an MCP ``inputSchema``; raises `SchemaError`."""
    if not isinstance(schema, Mapping):
        raise SchemaError("inputSchema: must be a JSON object")
    definitions: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            definitions.update({f"#/{key}/{name}": value for name, value in found.items()})
    dropped: list[str] = []
    converted = _node(schema, "inputSchema", definitions, dropped, ())
    if converted.get("type") != "object":
        raise SchemaError("inputSchema: the top level must be an object")
    if not converted.get("properties"):
        return Converted(None, dropped)
    problems = check_schema(converted, ("inputSchema",))
    if problems:
        where, message = problems[0]
        raise SchemaError(f"{'.'.join(str(p) for p in where)}: {message}")
    return Converted(converted, dropped)


def _node(schema: Any, where: str, definitions: Mapping[str, Any], dropped: list[str],
          refs: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: must be a JSON object")
    if "$ref" in schema:
        return _node(_resolve(schema, where, definitions, refs), where, definitions, dropped,
                     (*refs, str(schema["$ref"])))
    any_of = schema.get("anyOf")
    if any_of is not None:  # Optional[X] as pydantic writes it: anyOf [X, {"type": "null"}]
        nulls = [s for s in any_of if s == {"type": "null"}] if isinstance(any_of, list) else []
        if not isinstance(any_of, list) or len(any_of) != 2 or len(nulls) != 1:
            raise SchemaError(f"{where}.anyOf: cannot be expressed in a function declaration "
                              "(only a type or null)")
        other = next(s for s in any_of if s != {"type": "null"})
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        inner = _node(other, f"{where}.anyOf[0]", definitions, dropped, refs)
        return _node({**inner, **rest, "nullable": True}, where, definitions, dropped, refs)
    all_of = schema.get("allOf")
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1:
            raise SchemaError(f"{where}.allOf: only an allOf of one schema can be declared")
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _node({**_node(all_of[0], f"{where}.allOf[0]", definitions, dropped, refs),
                      **rest}, where, definitions, dropped, refs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _MEANING:
            raise SchemaError(f"{where}.{key}: cannot be expressed in a function declaration")
        if key in _DROPPED:
            if key not in ("$defs", "definitions") or where != "inputSchema":
                dropped.append(f"{where}.{key}")
            continue
        if key == "type":
            out.update(_type(value, where))
        elif key == "const":
            out["enum"] = [value]
        elif key in _CHILD_MAPS:
            if not isinstance(value, Mapping):
                raise SchemaError(f"{where}.{key}: must be a JSON object")
            out[key] = {name: _node(child, f"{where}.{key}.{name}", definitions, dropped, refs)
                        for name, child in value.items()}
        elif key in _CHILD_ONE:
            out[key] = _node(value, f"{where}.{key}", definitions, dropped, refs)
        elif key in SUPPORTED_KEYWORDS:
            out[key] = value
        else:
            dropped.append(f"{where}.{key}")
    if "pattern" in out and pattern_problem(out["pattern"], out.get("maxLength")) is not None:
        del out["pattern"]  # not safely matched here (no maxLength <= MAX_PATTERN_INPUT)
        dropped.append(f"{where}.pattern")
    if "type" not in out and "enum" not in out:
        raise SchemaError(f"{where}: needs a type")
    return out


def _resolve(schema: Mapping[str, Any], where: str, definitions: Mapping[str, Any],
             refs: tuple[str, ...]) -> Any:
    ref = schema["$ref"]
    if not isinstance(ref, str) or ref not in definitions:
        raise SchemaError(f"{where}.$ref: {ref!r} is not in the schema's $defs")
    if ref in refs:
        raise SchemaError(f"{where}.$ref: {ref} refers to itself: a recursive schema cannot "
                          "be declared")
    if len(refs) >= MAX_REF_DEPTH:
        raise SchemaError(f"{where}.$ref: more than {MAX_REF_DEPTH} references deep")
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    target = definitions[ref]
    return {**target, **siblings} if isinstance(target, Mapping) else target


def _type(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, list) and len(value) == 2 and "null" in value:
        other = next(t for t in value if t != "null")
        if isinstance(other, str):
            return {"type": other, "nullable": True}
    raise SchemaError(f"{where}.type: {value!r} is a union of types; declare one type")


