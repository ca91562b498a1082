"""OpenAI chat bodies → Gemini request bodies; every translated piece is validated with the
google-genai SDK's own types (extra="forbid", so a misspelt or unknown field fails)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.genai import types

from gateway.config import ProviderConfig
from gateway.core import ClientRequest, Price, Target
from gateway.errors import InvalidRequest
from gateway.providers.gemini import GeminiAdapter, model_url
from gateway.providers.gemini_request import to_gemini
from gateway.providers.gemini_schema import to_gemini_schema

KEY = "AIza-unit-secret"
PROVIDER = ProviderConfig(name="gemini", kind="gemini", api_key=KEY)
TARGET = Target("flash", "gemini-1.5-flash", PROVIDER, Price.per_mtok(0.075, 0.3))
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    """Parse each part of a GenerateContentRequest body with the SDK type it must match."""
    pieces: dict[str, Any] = {
        "contents": list[types.Content],
        "systemInstruction": types.Content,
        "tools": list[types.Tool],
        "toolConfig": types.ToolConfig,
        "generationConfig": types.GenerationConfig,
        "safetySettings": list[types.SafetySetting],
        "cachedContent": str,
    }
    assert set(body) <= set(pieces), set(body) - set(pieces)
    from pydantic import TypeAdapter

    for key, value in body.items():
        TypeAdapter(pieces[key]).validate_python(value)
    return body


def _build(
    body: dict[str, Any], stream: bool = False
) -> tuple[str, dict[str, str], dict[str, Any]]:
    req = ClientRequest("chat", {"model": "flash", **body}, "flash", stream=stream)
    up = GeminiAdapter().build_request(req, TARGET)
    return up.url, up.headers, _validated(orjson.loads(up.body))


def test_url_and_key_header() -> None:
    url, headers, _ = _build({"messages": [{"role": "user", "content": "hi"}]})
    assert url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent"
    )
    assert headers["x-goog-api-key"] == KEY and KEY not in url
    url, _, _ = _build({"messages": [{"role": "user", "content": "hi"}]}, stream=True)
    assert url.endswith("/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse")
    assert "key=" not in url


@pytest.mark.parametrize(
    "base, model, expected",
    [
        (
            "http://127.0.0.1:1/gemini-flash",
            "gemini-1.5-flash",
            "http://127.0.0.1:1/gemini-flash/v1beta/models/gemini-1.5-flash:generateContent",
        ),
        (
            "https://example.test/v1beta/",
            "models/gemini-2.0-flash",
            "https://example.test/v1beta/models/gemini-2.0-flash:generateContent",
        ),
        (
            "https://example.test/v1",
            "tunedModels/mine",
            "https://example.test/v1/tunedModels/mine:generateContent",
        ),
    ],
)
def test_model_url(base: str, model: str, expected: str) -> None:
    provider = ProviderConfig(name="g", kind="gemini", api_base=base)
    assert model_url(Target("m", model, provider, Price.per_mtok(0, 0)), False) == expected


def test_no_key_no_header() -> None:
    provider = ProviderConfig(name="g", kind="gemini", api_base="http://127.0.0.1:1")
    req = ClientRequest("chat", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "m")
    up = GeminiAdapter().build_request(req, Target("m", "g", provider, Price.per_mtok(0, 0)))
    assert "x-goog-api-key" not in up.headers


def test_messages_roles_system_and_merging() -> None:
    _, _, body = _build(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hello"},
                {"role": "user", "content": [{"type": "text", "text": "again"}]},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "assistant", "content": None},  # nothing to send: dropped
                {"role": "user", "content": "Bye"},
            ]
        }
    )
    assert body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}, {"text": "again"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "Bye"}]},
    ]
    assert "generationConfig" not in body  # nothing asked: nothing set


def test_generation_config() -> None:
    _, _, body = _build(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 50,
            "max_completion_tokens": 40,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.1,
            "user": "u-1",
            "logprobs": False,
            "reasoning_effort": "low",
        }
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.1,
        "candidateCount": 2,
        "maxOutputTokens": 40,
        "stopSequences": ["END"],
        "thinkingConfig": {"thinkingBudget": 1024},
    }


def test_json_modes_and_schema_sanitising() -> None:
    _, _, body = _build(
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    )
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "required": ["city", "temp"],
        "properties": {
            "city": {"type": "string"},
            "temp": {"$ref": "#/$defs/Temp"},
            "note": {"type": ["string", "null"]},
            "kind": {"const": "report"},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "$defs": {"Temp": {"type": "number", "description": "Celsius"}},
    }
    _, _, body = _build(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "strict": True, "schema": schema},
            },
        }
    )
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "object",
        "required": ["city", "temp"],
        "properties": {
            "city": {"type": "string"},
            "temp": {"type": "number", "description": "Celsius"},
            "note": {"type": "string", "nullable": True},
            "kind": {"enum": ["report"]},
            "tags": {"nullable": True, "type": "array", "items": {"type": "string"}},
        },
    }


def test_recursive_ref_is_cut() -> None:
    node = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
    out = to_gemini_schema({"$ref": "#/$defs/Node", "$defs": {"Node": node}})
    assert out["type"] == "object" and "child" in out["properties"]


@pytest.mark.parametrize(
    "choice, config",
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tools_and_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    noargs = {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
    }
    _, _, body = _build(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER, noargs],
            "tool_choice": choice,
        }
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # Gemini refuses an OBJECT without properties
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_tool_call_round_trip_recovers_the_function_name() -> None:
    _, _, body = _build(
        {
            "tools": [WEATHER],
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                            "extra_content": {"google": {"thought_signature": "c2ln"}},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
                {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
            ],
        }
    )
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": "c2ln",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            ],
        },
    ]


def test_images_and_audio() -> None:
    _, _, body = _build(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "https://generativelanguage.googleapis.com/v1beta/files/abc.jpg"
                            },
                        },
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "UklGRg==", "format": "wav"},
                        },
                    ],
                }
            ]
        }
    )
    assert body["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {
            "fileData": {
                "mimeType": "image/jpeg",
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc.jpg",
            }
        },
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_googles_compatibility_extension() -> None:
    body = to_gemini(
        {
            "messages": [{"role": "user", "content": "x"}],
            "extra_body": {
                "google": {
                    "thinking_config": {"thinking_budget": 800, "include_thoughts": True},
                    "cached_content": "cachedContents/abc",
                    "safety_settings": [
                        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
                    ],
                }
            },
        }
    )
    assert _validated(body)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 800, "includeThoughts": True}
    }
    assert body["cachedContent"] == "cachedContents/abc"
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{oops"},
                            }
                        ],
                    }
                ]
            },
            "messages",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}
                        ],
                    }
                ]
            },
            "messages",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "x"}},
            "tool_choice",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
            "tools",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"},
            "reasoning_effort",
        ),
    ],
)
def test_untranslatable_requests_are_400s_naming_the_field(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as e:
        to_gemini(body)
    assert e.value.param == param and e.value.status_code == 400
