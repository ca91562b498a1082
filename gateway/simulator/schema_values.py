"""A deterministic value valid against a JSON Schema: what the simulated model answers in JSON
mode with a schema, and passes as a tool call's arguments (pure, memoised per schema).

Why not `hypothesis-jsonschema` (the kept library for this): its latest release (0.23.1)
fails on every object schema under current Hypothesis (`AttributeError: 'many' object has no
attribute 'more'` in `from_object_schema`: Hypothesis removed that internal), and pinning an
old Hypothesis into the gateway's runtime dependencies for the simulator's sake would be
worse; its `find()` also runs a search per schema. Structured-output schemas (OpenAI's
strict mode, Gemini's `Schema`, Anthropic's `input_schema`) use a small, well-defined subset,
which this covers: `type` (and type lists), `properties` / `required`, `items` /
`prefixItems`, `minItems` / `maxItems` / `uniqueItems`, `enum`, `const`, `anyOf` / `oneOf` /
`allOf`, local `$ref` into `$defs` / `definitions`, string `minLength` / `maxLength` /
`pattern` / `format`, number bounds and `multipleOf`, and Gemini's `nullable`. Every
property is filled in (the answer shows the whole shape); a property named like a place is
"Paris", as the simulator's earlier fixed answers were. The tests validate the values with
the `jsonschema` library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from gateway.simulator.regex_sample import sample as regex_sample

PLACES = ("location", "city", "place")
FORMATS: dict[str, str] = {
    "date": "2026-01-15",
    "date-time": "2026-01-15T09:30:00Z",
    "time": "09:30:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "duration": "P1D",
}
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def example_json(schema: Mapping[str, Any] | None) -> str:
    """`example(schema)` as compact JSON text (memoised on the schema's JSON text)."""
    if not schema:
        return "{}"
    return _example_json(orjson.dumps(schema).decode())


@lru_cache(maxsize=1024)
def _example_json(text: str) -> str:
    schema = orjson.loads(text)
    return orjson.dumps(example(schema, schema)).decode()


def _resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(32):  # a $ref chain longer than this is a loop
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        node: Any = root
        for key in ref[1:].split("/")[1:]:
            key = key.replace("~1", "/").replace("~0", "~")
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **rest} if isinstance(node, Mapping) else rest
    return {}


def _merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _resolve(part, root)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k).lower() for k in kind]
        kind = next((k for k in kinds if k != "null"), "null")
    if isinstance(kind, str) and kind.lower() in _TYPES:
        return kind.lower()
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def example(schema: Any, root: Mapping[str, Any], name: str = "", n: int = 0) -> Any:
    """A value valid against `schema`; `n` makes the n-th distinct one (unique array items)."""
    schema = _resolve(schema, root)
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[n % len(enum)]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            rest = {k: v for k, v in schema.items() if k != key}
            return example({**rest, **_resolve(branches[0], root)}, root, name, n)
    kind = _type(schema)
    if kind == "object":
        return _object(schema, root)
    if kind == "array":
        return _array(schema, root, name)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer", n)
    if kind == "boolean":
        return n % 2 == 0
    if kind == "null":
        return None
    return _string(schema, name, n)


def _object(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    out = {str(k): example(v, root, str(k)) for k, v in props.items()}
    for key in schema.get("required") or ():
        out.setdefault(str(key), "example")
    return out


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], name: str) -> list[Any]:
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    low = max(int(schema.get("minItems") or 0), len(prefix), 1)
    high = schema.get("maxItems")
    count = min(low, int(high)) if isinstance(high, int) else low
    items = schema.get("items")
    out = [
        example(prefix[i], root, name) if i < len(prefix) else example(items, root, name, i)
        for i in range(count)
    ]
    return out


def _number(schema: Mapping[str, Any], integer: bool, n: int) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    value: float = 1 + n
    if isinstance(low, int | float):
        value = max(value, math.ceil(low) if integer else low)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    if isinstance(high, int | float) and value > high:
        value = math.floor(high) if integer else high
    return int(value) if integer else value


def _string(schema: Mapping[str, Any], name: str, n: int) -> str:
    fmt = schema.get("format")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        text = regex_sample(pattern, n)
    elif isinstance(fmt, str) and fmt in FORMATS:
        text = FORMATS[fmt]
    else:
        text = "Paris" if name.lower() in PLACES else "example"
        text = text if n == 0 else f"{text}{n}"
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(text) < low and not isinstance(pattern, str):
        text += "x" * (low - len(text))
    if isinstance(high, int) and len(text) > high and not isinstance(pattern, str):
        text = text[:high]
    return text
