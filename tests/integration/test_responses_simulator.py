"""The simulator's `/v1/responses` driven by the openai SDK, every body and event validated
against the SDK's types; and JSON-schema answers and tool arguments on every endpoint (OpenAI
chat and Responses, Anthropic Messages, Gemini), validated with `jsonschema`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import openai
import pytest
from google import genai
from google.genai import types
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.support import ServerThread

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "day": {
            "type": "object",
            "properties": {
                "date": {"type": "string", "format": "date"},
                "high": {"type": "number", "minimum": -50, "maximum": 60},
                "sky": {"enum": ["clear", "cloudy", "rain"]},
            },
            "required": ["date", "high", "sky"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
        "days": {"type": "array", "items": {"$ref": "#/$defs/day"}, "minItems": 2},
        "alert": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "count": {"type": "integer", "exclusiveMinimum": 4, "multipleOf": 3},
    },
    "required": ["city", "code", "days", "alert", "count"],
    "additionalProperties": False,
}


@pytest.fixture()
def oc(sim: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim.url}/instant/v1", api_key="k", max_retries=0)


def test_whole_answer_matches_the_stream(oc: openai.OpenAI, sim: ServerThread) -> None:
    body = {"model": "gpt-4o-mini", "input": "Tell me about gateways.", "instructions": "Brief."}
    raw = httpx.post(f"{sim.url}/instant/v1/responses", json=body).json()
    whole = Response.model_validate(raw)
    assert whole.status == "completed" and whole.output_text and whole.usage is not None
    assert whole.usage.total_tokens == whole.usage.input_tokens + whole.usage.output_tokens
    with httpx.stream(
        "POST", f"{sim.url}/instant/v1/responses", json={**body, "stream": True}
    ) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    events = [EVENTS.validate_json(line[6:]) for line in lines]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == whole.output_text  # fmt: skip
    with oc.responses.stream(model="gpt-4o-mini", input=body["input"]) as s:
        for _ in s:
            pass
        assert s.get_final_response().output_text == whole.output_text


def test_tools_limits_and_the_missing_state(oc: openai.OpenAI) -> None:
    tool: Any = {"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": True}
    r = oc.responses.create(model="m", input="weather please", tools=[tool], tool_choice="required")
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), SCHEMA)
    cut = oc.responses.create(model="m", input="hi", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.usage is not None and cut.usage.output_tokens == 2
    with pytest.raises(openai.NotFoundError) as e:
        oc.responses.create(model="m", input="hi", previous_response_id="resp_x")
    assert e.value.response.json()["error"]["param"] == "previous_response_id"


def test_openai_json_schema_answers_are_valid(oc: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "f", "schema": SCHEMA}}
    chat = oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], response_format=fmt)  # fmt: skip
    jsonschema.validate(json.loads(chat.choices[0].message.content or ""), SCHEMA)
    text: Any = {"format": {"type": "json_schema", "name": "f", "schema": SCHEMA}}
    r = oc.responses.create(model="m", input="x", text=text)
    jsonschema.validate(json.loads(r.output_text), SCHEMA)
    streamed = "".join(
        e.delta for e in oc.responses.create(model="m", input="x", text=text, stream=True)
        if e.type == "response.output_text.delta"
    )  # fmt: skip
    assert streamed == r.output_text


def test_anthropic_tool_input_is_valid(sim: ServerThread) -> None:
    ac = anthropic.Anthropic(base_url=f"{sim.url}/instant", api_key="k", max_retries=0)
    m = ac.messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=500,
        messages=[{"role": "user", "content": "x"}],
        tools=[{"name": "f", "input_schema": SCHEMA}],
        tool_choice={"type": "tool", "name": "f"},
    )
    use = next(b for b in m.content if b.type == "tool_use")
    jsonschema.validate(use.input, SCHEMA)


@pytest.fixture()
def gclient(sim: ServerThread) -> Iterator[genai.Client]:
    client = genai.Client(
        api_key="k",
        http_options=types.HttpOptions(base_url=f"{sim.url}/instant", api_version="v1beta"),
    )
    yield client
    client.close()


def test_gemini_json_and_function_arguments_are_valid(gclient: genai.Client) -> None:
    schema = {k: v for k, v in SCHEMA.items() if k != "additionalProperties"}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema
    )
    r = gclient.models.generate_content(model="gemini-1.5-flash", contents="x", config=config)
    jsonschema.validate(json.loads(r.text or ""), schema)
    nullable = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "note": types.Schema(type=types.Type.STRING, nullable=True),
            "days": types.Schema(type=types.Type.INTEGER, minimum=3),
        },
        required=["city", "days"],
    )
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="f", parameters=nullable)])  # fmt: skip
    mode = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
    config = types.GenerateContentConfig(tools=[tool], tool_config=types.ToolConfig(function_calling_config=mode))  # fmt: skip
    r = gclient.models.generate_content(model="gemini-1.5-flash", contents="x", config=config)
    assert r.function_calls and r.function_calls[0].args is not None
    args = r.function_calls[0].args
    assert args["days"] >= 3 and isinstance(args["city"], str)
