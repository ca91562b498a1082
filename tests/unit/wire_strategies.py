"""hypothesis strategies for the client wire shapes — OpenAI chat bodies and Anthropic Messages
bodies — built from their documented types (openai-python `ChatCompletionMessageParam` and
friends; anthropic-sdk-python `MessageParam`, content blocks, tools), and a hostile variant
that puts arbitrary JSON where the gateway does not check the type."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

TEXT = st.text(max_size=12)
NAME = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
CALL_ID = st.sampled_from(["call_1", "call_2", "toolu_1", "toolu_2"])
JSON: st.SearchStrategy[Any] = st.recursive(
    # JSON numbers as orjson reads them: 64-bit integers, finite floats
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON, max_size=3)
IMAGE_URL = st.sampled_from(
    ["data:image/png;base64,iVBORw0KGgo=", "https://example.com/cat.png", "data:,plain"]
)
SCHEMA = st.sampled_from(
    [
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        {
            "type": "object",
            "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            "$defs": {"x": {"type": "string"}},
        },
    ]
)

# --- OpenAI chat ----------------------------------------------------------------------------

_TEXT_PART = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
_IMAGE_PART = st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": IMAGE_URL})}
)
_TOOL_CALL = st.fixed_dictionaries(
    {
        "id": CALL_ID,
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAME, "arguments": JSON_OBJECT.map(lambda d: orjson.dumps(d).decode())}
        ),
    }
)
OPENAI_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "developer"]),
            "content": TEXT | st.lists(_TEXT_PART, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {"role": st.just("user"), "content": TEXT | st.lists(_TEXT_PART | _IMAGE_PART, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": st.none() | TEXT},
        optional={"tool_calls": st.lists(_TOOL_CALL, min_size=1, max_size=2)},
    ),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "tool_call_id": CALL_ID, "content": TEXT},
    ),
)
_FUNCTION_TOOL = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAME}, optional={"description": TEXT, "parameters": SCHEMA}
        ),
    }
)
_OPENAI_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_tokens": st.integers(1, 4096),
    "max_completion_tokens": st.integers(1, 4096),
    "stop": TEXT | st.lists(TEXT, max_size=4),
    "user": TEXT,
    "seed": st.integers(0, 2**31),
    "n": st.just(1),
    "stream": st.booleans(),
    "tools": st.lists(_FUNCTION_TOOL, max_size=2),
    "tool_choice": st.sampled_from(["auto", "none", "required"])
    | st.fixed_dictionaries(
        {"type": st.just("function"), "function": st.fixed_dictionaries({"name": NAME})}
    ),
    "parallel_tool_calls": st.booleans(),
    "response_format": st.sampled_from(
        [
            {"type": "text"},
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        ]
    ),
    "reasoning_effort": st.sampled_from(["none", "low", "medium", "high"]),
    "logprobs": st.booleans(),
}
OPENAI_CHAT = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(OPENAI_MESSAGE, min_size=1, max_size=6)},
    optional=_OPENAI_OPTIONAL,
)
# The same keys with anything JSON in them (what a hostile client sends where the gateway's
# wire check does not look), and messages whose fields are arbitrary.
HOSTILE_CHAT = st.fixed_dictionaries(
    {
        "model": st.just("m"),
        "messages": st.lists(
            OPENAI_MESSAGE
            | st.fixed_dictionaries(
                {"role": TEXT | st.sampled_from(["user", "assistant", "tool", "system"])},
                optional={"content": JSON, "tool_calls": JSON, "tool_call_id": JSON},
            ),
            min_size=1,
            max_size=5,
        ),
    },
    optional={key: JSON for key in _OPENAI_OPTIONAL} | {"extra_body": JSON_OBJECT},
)

# --- Anthropic Messages ----------------------------------------------------------------------

_A_TEXT = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
_A_IMAGE = st.fixed_dictionaries(
    {
        "type": st.just("image"),
        "source": st.sampled_from(
            [
                {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                {"type": "url", "url": "https://example.com/cat.png"},
            ]
        ),
    }
)
_A_TOOL_USE = st.fixed_dictionaries(
    {"type": st.just("tool_use"), "id": CALL_ID, "name": NAME, "input": JSON_OBJECT}
)
_A_TOOL_RESULT = st.fixed_dictionaries(
    {
        "type": st.just("tool_result"),
        "tool_use_id": CALL_ID,
        "content": TEXT | st.lists(_A_TEXT, max_size=2),
    }
)
_A_THINKING = st.fixed_dictionaries(
    {"type": st.just("thinking"), "thinking": TEXT, "signature": TEXT}
)
ANTHROPIC_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.just("user"),
            "content": TEXT | st.lists(_A_TEXT | _A_IMAGE | _A_TOOL_RESULT, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "content": TEXT | st.lists(_A_TEXT | _A_TOOL_USE | _A_THINKING, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {"role": st.just("system"), "content": TEXT | st.lists(_A_TEXT, min_size=1, max_size=2)}
    ),
)
_A_TOOL = st.fixed_dictionaries(
    {"name": NAME, "input_schema": SCHEMA}, optional={"description": TEXT}
)
ANTHROPIC_BODY = st.fixed_dictionaries(
    {
        "model": st.just("m"),
        "max_tokens": st.integers(1, 4096),
        "messages": st.lists(ANTHROPIC_MESSAGE, min_size=1, max_size=6),
    },
    optional={
        "system": TEXT | st.lists(_A_TEXT, max_size=2),
        "temperature": st.floats(0, 1),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 500),
        "stop_sequences": st.lists(TEXT, max_size=3),
        "metadata": st.fixed_dictionaries({}, optional={"user_id": TEXT}),
        "stream": st.booleans(),
        "tools": st.lists(_A_TOOL, max_size=2),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}])
        | st.fixed_dictionaries(
            {"type": st.just("tool"), "name": NAME},
            optional={"disable_parallel_tool_use": st.booleans()},
        ),
    },
)
HOSTILE_MESSAGES = st.fixed_dictionaries(
    {
        "model": st.just("m"),
        "max_tokens": st.integers(1, 4096),
        "messages": st.lists(
            ANTHROPIC_MESSAGE
            | st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "system"]),
                    "content": st.lists(
                        st.dictionaries(TEXT, JSON, max_size=3)
                        | st.fixed_dictionaries(
                            {"type": st.sampled_from(["text", "image", "tool_use", "tool_result"])},
                            optional={
                                "text": JSON,
                                "source": JSON,
                                "input": JSON,
                                "content": JSON,
                                "id": JSON,
                                "name": JSON,
                                "tool_use_id": JSON,
                            },
                        ),
                        max_size=3,
                    ),
                }
            ),
            min_size=1,
            max_size=4,
        ),
    },
    optional={
        "system": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "metadata": JSON,
        "stop_sequences": JSON,
    },
)
