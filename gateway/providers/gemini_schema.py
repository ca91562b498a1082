"""JSON Schema (what OpenAI clients send) → Gemini's `Schema` (an OpenAPI 3.0 subset) — pure.

Used for function `parameters` and for `response_format: json_schema`. Gemini's `Schema`
(https://ai.google.dev/api/caching#Schema; google-genai `types.Schema`) has no `$ref`,
`$defs`, `const`, type arrays or `additionalProperties` on the Gemini Developer API (the
official SDK refuses the latter outside Vertex AI: `_transformers._raise_for_unsupported_
mldev_properties`), so this module does what the SDK's `process_schema` does before sending:
inline local `$ref`s, turn `["string", "null"]` / `anyOf [..., {"type": "null"}]` into
`nullable`, `const` into a one-value `enum`, and drop every key `Schema` does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The wire names of google-genai `types.Schema` fields that the Gemini Developer API accepts.
_KEPT = frozenset(
    {
        "anyOf",
        "default",
        "description",
        "enum",
        "example",
        "format",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "nullable",
        "pattern",
        "properties",
        "propertyOrdering",
        "required",
        "title",
        "type",
    }
)
_MAX_DEPTH = 32  # a recursive $ref is cut here instead of looping


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    defs = {**_as_dict(schema.get("definitions")), **_as_dict(schema.get("$defs"))}
    return _convert(schema, defs, 0)


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _convert(schema: Mapping[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        merged = {**_as_dict(target), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _convert(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {str(k): _convert(_as_dict(v), defs, depth + 1) for k, v in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _convert(value, defs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            _any_of(out, [_as_dict(v) for v in value], defs, depth)
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": t} for t in kinds]
        elif key == "const":
            out["enum"] = [value]
        elif key in _KEPT:
            out[key] = value
    return out


def _any_of(
    out: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any], depth: int
) -> None:
    """`anyOf [X, {"type": "null"}]` (pydantic's Optional[X]) becomes X with `nullable`."""
    rest = [o for o in options if o.get("type") != "null"]
    if len(rest) < len(options):
        out["nullable"] = True
    converted = [_convert(o, defs, depth + 1) for o in rest]
    if len(converted) == 1:
        out.update({k: v for k, v in converted[0].items() if k not in out})
    elif converted:
        out["anyOf"] = converted
