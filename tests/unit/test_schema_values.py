"""The simulator's schema-driven values: valid (checked by `jsonschema`) and deterministic."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from gateway.simulator.regex_sample import sample
from gateway.simulator.schema_values import example_json

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    },  # fmt: skip
    {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 12}},
        "required": ["n"],
    },  # fmt: skip
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMaximum": 0}}},
    {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0.25, "minimum": 1.1}}},
    {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
    {"type": "array", "maxItems": 0},
    {"type": ["null", "string"], "maxLength": 3},
    {"type": "string", "minLength": 20},
    {"const": {"fixed": [1, 2]}},
    {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    {
        "allOf": [
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },  # fmt: skip
    {
        "definitions": {
            "node": {"type": "object", "properties": {"v": {"type": "integer"}}, "required": ["v"]}
        },
        "type": "object",
        "properties": {"root": {"$ref": "#/definitions/node"}},
        "required": ["root"],
    },  # fmt: skip
    {"type": "object", "required": ["undeclared"]},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"},
    {"type": "string", "pattern": "^(yes|no)-[a-c]{2,4}\\d?$"},
    {"type": "string", "pattern": "^[^aeiou]+@[\\w.]+\\.(com|org)$"},
    {
        "type": "object",
        "properties": {"s": {"type": "string", "enum": ["x"]}},
        "additionalProperties": False,
    },  # fmt: skip
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_values_are_valid_and_repeatable(schema: dict[str, Any]) -> None:
    text = example_json(schema)
    jsonschema.validate(json.loads(text), schema)
    assert example_json(json.loads(json.dumps(schema))) == text


def test_places_read_as_places_and_nothing_is_an_empty_object() -> None:
    assert json.loads(example_json(SCHEMAS[0])) == {"location": "Paris", "unit": "c"}
    assert example_json(None) == "{}" and example_json({}) == "{}"


@pytest.mark.parametrize("pattern", [r"^\d{3}-\d{4}$", r"[A-Z][a-z]+", r"^a.c$", r"^(?:ab|cd)+$", r"^x(?=y)y$"])  # fmt: skip
def test_regex_samples_match(pattern: str) -> None:
    assert re.search(pattern, sample(pattern))
