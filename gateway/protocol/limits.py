"""The shape limits every request body is held to at the parse step, before anything walks it.

A body is decoded once (orjson), then checked: how deeply its JSON nests, how many messages it
has, how many content parts one message has. Each is a 400 in the endpoint's own envelope
naming the limit, so a hostile body is refused before it is validated, translated, routed or
re-encoded. Nesting is the one that was a crash: orjson decodes up to 1,024 levels but encodes
at most 254, so a body 255–1,024 levels deep parsed and then failed with a 500 when an adapter
re-encoded it for the upstream; the gateway's own limit (`limits.max_json_depth`, at most
`MAX_JSON_DEPTH`) keeps every accepted body re-encodable, with room for the few levels a
translation wraps around a client's value (e.g. a tool schema inside Gemini's declarations).

The values come from `config.LimitsConfig`; this module only needs their three numbers
(`BodyLimits`), so the protocol layer stays free of the config schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.errors import InvalidRequest

# orjson.dumps refuses deeper than 254 levels; translations add fewer than 10 around a value.
MAX_JSON_DEPTH = 200


class BodyLimits(Protocol):
    @property
    def max_json_depth(self) -> int: ...

    @property
    def max_messages(self) -> int: ...

    @property
    def max_content_parts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """The defaults (config.LimitsConfig has the same; tests and tools use this one)."""

    max_json_depth: int = 64
    max_messages: int = 10_000
    max_content_parts: int = 1_000


DEFAULT_LIMITS = Limits()


def load_object(raw: bytes, limits: BodyLimits) -> dict[str, Any]:
    """Bytes → the body as a dict, refused (InvalidRequest) when it is not JSON, not an
    object, or nests deeper than `limits.max_json_depth`."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(
            f"The request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    check_depth(raw, limits.max_json_depth)
    return body


def check_depth(raw: bytes, limit: int) -> None:
    if _deeper_than(raw, limit):
        raise InvalidRequest(
            f"The request body nests JSON more than {limit} levels deep (limits.max_json_depth).",
            code="json_too_deep",
        )


# `{`/`}` become `[`/`]` (matching is all that counts), quotes stay, every other byte goes
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_OTHER_BYTES = bytes(b for b in range(256) if b not in b'[]{}"')


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON text `raw` (already decoded once, so well-formed) nests containers
    more than `limit` levels, the body itself being level 1. Done on the bytes with C-speed
    bytes methods: walking the decoded objects in Python cost ~1 ms for a 200-message
    conversation, and a regex over the strings more.

    Escaped backslashes, then escaped quotes, are dropped, so the remaining quotes delimit
    strings; the text between them (brackets in prose or code) is dropped; what is left is
    the brackets alone, and each `replace` pass deletes every empty container at once (it
    does not rescan what it joined), so they are gone after as many passes as the depth."""
    # escapes: only \\ and \" matter, and only for where strings end (`find`, not `in`: a
    # bytes `in` first tries its operand as an int, and that failed TypeError costs more)
    if raw.find(b"\\") >= 0:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(_BRACKETS, _OTHER_BYTES)  # one pass; what is left is small
    # no more brackets than the limit cannot nest deeper: this spares most requests the rest
    if kept.count(b"[") <= limit:
        return False
    # drop every pair of adjacent quotes first (strings with no bracket in them, C speed; the
    # quotes left keep their inside/outside alternation), then the strings that hold brackets
    brackets = b"".join(kept.replace(b'""', b"").split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)  # a bracket left after `limit` passes is deeper than `limit`


def check_messages(
    messages: object, limits: BodyLimits, *, parts_key: str = "content", field: str = "messages"
) -> None:
    """At most `max_messages` messages and `max_content_parts` parts in any one's content.
    Shapes are checked by the wire models after this; anything else is left to them."""
    if not isinstance(messages, list):
        return
    if len(messages) > limits.max_messages:
        raise too_long(field, len(messages), limits.max_messages, "limits.max_messages")
    cap = limits.max_content_parts
    for i, m in enumerate(messages):
        parts = m.get(parts_key) if isinstance(m, dict) else None
        if isinstance(parts, list) and len(parts) > cap:
            raise too_long(f"{field}[{i}].{parts_key}", len(parts), cap, "limits.max_content_parts")


def too_long(field: str, length: int, limit: int, key: str) -> InvalidRequest:
    """OpenAI's wording and code for an array over its maximum length."""
    return InvalidRequest(
        f"Invalid '{field}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {length} instead ({key}).",
        param=field.split("[", 1)[0].split(".", 1)[0],
        code="array_above_max_length",
    )
