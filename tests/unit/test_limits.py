"""protocol/limits.py: the nesting check on the raw bytes agrees with the nesting of the decoded
value whatever the strings hold (brackets, quotes, backslashes, escapes), and the count limits
name what they refuse."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidRequest
from gateway.protocol.limits import Limits, _deeper_than, check_messages, load_object

# strings full of what could fool a byte scanner
TRICKY = st.text(alphabet='[]{}"\\/ \n\tab\u00e9\u2028', max_size=8)
VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=400, database=None, derandomize=True)
@given(value=VALUES, limit=st.integers(0, 8), pretty=st.booleans())
def test_the_byte_check_agrees_with_the_decoded_depth(value: Any, limit: int, pretty: bool) -> None:
    raw = json.dumps(value, indent=1).encode() if pretty else orjson.dumps(value)
    assert _deeper_than(raw, limit) == (depth(value) > limit)


@pytest.mark.parametrize(
    ("raw", "deeper_than_2"),
    [
        (b'{"a": "[[[[[[[[[["}', False),
        (b'{"a": "\\\\", "b": [[1]]}', True),  # an escaped backslash ends the string
        (b'{"a": "\\"[[[", "b": [1]}', False),  # an escaped quote does not
        (b'{"a\\"]]": {"b": {}}}', True),
        (b'[[], [], {}, {"a": []}]', True),
        (b'[[], [], {}, {"a": 1}]', False),
    ],
)
def test_tricky_strings(raw: bytes, deeper_than_2: bool) -> None:
    orjson.loads(raw)  # well-formed, as the check assumes
    assert _deeper_than(raw, 2) == deeper_than_2


def test_load_object_refuses_with_the_configured_limit() -> None:
    nested = b'{"x": ' + b"[" * 10 + b"]" * 10 + b"}"
    assert load_object(nested, Limits(max_json_depth=11)) == {"x": [[[[[[[[[[]]]]]]]]]]}
    with pytest.raises(InvalidRequest) as e:
        load_object(nested, Limits(max_json_depth=10))
    assert e.value.code == "json_too_deep" and "more than 10 levels" in e.value.message


def test_counts_name_the_field_and_the_key() -> None:
    limits = Limits(max_messages=2, max_content_parts=1)
    check_messages([{"content": "a"}, {"content": ["p"]}], limits)
    check_messages("not a list", limits)  # shapes are the wire models' business
    with pytest.raises(InvalidRequest) as e:
        check_messages([{}, {}, {}], limits)
    assert e.value.param == "messages" and "limits.max_messages" in e.value.message
    with pytest.raises(InvalidRequest) as e:
        check_messages([{"content": ["a", "b"]}], limits)
    assert "messages[0].content" in e.value.message and e.value.code == "array_above_max_length"
