"""MCP input schemas as function declarations: the schemas pydantic writes (what the MCP SDK's
servers publish) translate; what a declaration cannot say is a clear error."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from agent.tools.errors import ArgumentError
from agent.tools.mcp_schema import SchemaError, convert_input_schema
from agent.tools.schema import validate_arguments


class Colour(StrEnum):
    WARM = "warm"
    COLD = "cold"


class Light(BaseModel):
    entity_id: str = Field(description="The light", max_length=64)
    brightness: int | None = Field(default=None, ge=0, le=255)
    colour: Colour = Colour.WARM
    mode: Literal["on", "off"] = "on"


class Scene(BaseModel):
    lights: list[Light] = Field(max_length=8)
    name: str


def test_a_pydantic_model_with_defs_optionals_and_literals_translates() -> None:
    converted = convert_input_schema(Scene.model_json_schema())
    params = converted.parameters
    assert params is not None
    light = params["properties"]["lights"]["items"]
    brightness = dict(light["properties"]["brightness"])
    assert brightness.pop("title") == "Brightness"  # an annotation, kept
    assert brightness == {"type": "integer", "nullable": True, "minimum": 0, "maximum": 255}
    assert light["properties"]["colour"]["enum"] == ["warm", "cold"]
    assert light["properties"]["mode"]["enum"] == ["on", "off"]
    assert "inputSchema.properties.lights.items.properties.colour.default" in converted.dropped
    args = {"name": "evening", "lights": [{"entity_id": "light.desk", "brightness": 40}]}
    assert validate_arguments(params, args)["name"] == "evening"
    with pytest.raises(ArgumentError):
        validate_arguments(params, {"name": "x", "lights": [{"entity_id": "l", "brightness": 999}]})


def test_no_arguments_means_no_parameters() -> None:
    assert convert_input_schema({"type": "object", "properties": {}}).parameters is None


def test_additional_properties_are_left_to_the_server() -> None:
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"q": {"type": "string", "maxLength": 10}}}
    converted = convert_input_schema(schema)
    assert converted.parameters == {"type": "object", "properties": {
        "q": {"type": "string", "maxLength": 10}}}
    assert converted.dropped == ["inputSchema.additionalProperties"]


def test_a_pattern_without_a_bounded_length_is_left_to_the_server() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string", "pattern": "^a+$"}}}
    converted = convert_input_schema(schema)
    assert converted.parameters is not None
    assert "pattern" not in converted.parameters["properties"]["q"]
    assert converted.dropped == ["inputSchema.properties.q.pattern"]


@pytest.mark.parametrize(("schema", "fragment"), [
    ({"type": "object", "properties": {"x": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
     "inputSchema.properties.x.oneOf: cannot be expressed"),
    ({"type": "object", "properties": {"x": {"type": ["string", "integer"]}}},
     "a union of types"),
    ({"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0}}},
     "exclusiveMinimum: cannot be expressed"),
    ({"type": "object", "properties": {"n": {"$ref": "#/$defs/Node"}},
      "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}},
     "refers to itself"),
    ({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}, "not in the schema"),
    ({"type": "array", "items": {"type": "string"}}, "the top level must be an object"),
    ({"type": "object", "properties": {"x": {}}}, "inputSchema.properties.x: needs a type"),
    ("not a schema", "must be a JSON object"),
])
def test_what_cannot_be_declared_is_a_clear_error(schema: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=None) as info:
        convert_input_schema(schema)
    assert fragment in str(info.value)
