"""`POST /v1/responses`: the openai SDK (`responses.create`, with and without `stream=True`,
`responses.stream`, `responses.parse`) against the real gateway and the simulator, for every
provider kind — OpenAI native (`responses_api: true`, the simulator's own `/v1/responses`),
OpenAI translated through chat, vLLM, Anthropic and Gemini."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.ledger.migrate import upgrade
from tests.integration.test_anthropic_chat import Gateway, claude_config
from tests.integration.test_gemini import KEY as GEMINI_KEY
from tests.integration.test_gemini import PRICE as GEMINI_PRICE
from tests.support import ServerThread, gateway_server, wait_rows

NATIVE = "gpt-native"
MODELS = [NATIVE, "gpt-4o-mini", "llama-3.1-8b", "claude-haiku", "gemini-flash"]
PROVIDERS = {
    NATIVE: "openai-native",
    "gpt-4o-mini": "openai",
    "llama-3.1-8b": "local-llama",
    "claude-haiku": "anthropic",
    "gemini-flash": "gemini",
}
NATIVE_PRICE = {"input_per_mtok": 0.15, "output_per_mtok": 0.60, "cache_read_per_mtok": 0.075}
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
ASK = "What is the weather in Paris?"


def responses_config(sim_url: str, db_url: str) -> GatewayConfig:
    """claude_config's providers plus a Gemini one and an OpenAI one that speaks Responses
    natively (on its own simulated upstream, `instant@native`, so faults can target it)."""
    raw = claude_config(sim_url, db_url).model_dump()
    raw["providers"] = [
        *raw["providers"],
        {
            "name": "gemini",
            "kind": "gemini",
            "api_base": f"{sim_url}/instant",
            "api_key": GEMINI_KEY,
            "timeout_s": 5,
        },
        {
            "name": "openai-native",
            "kind": "openai",
            "api_base": f"{sim_url}/instant@native/v1",
            "api_key": "sk-native",
            "timeout_s": 5,
            "responses_api": True,
        },
    ]
    raw["models"] = [
        *raw["models"],
        {
            "name": "gemini-flash",
            "provider": "gemini",
            "upstream_model": "gemini-1.5-flash",
            "price": GEMINI_PRICE,
        },
        {
            "name": NATIVE,
            "provider": "openai-native",
            "upstream_model": "gpt-4o-mini",
            "price": NATIVE_PRICE,
        },
    ]
    return parse_config(raw, source="test", environ={})


@pytest.fixture(scope="module")
def shared(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    ledger = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('responses')) / 'ledger.db'}"
    upgrade(ledger)
    app = create_app(responses_config(simulator.url, ledger), CollectorRegistry())
    server = gateway_server(app)
    try:
        yield Gateway(server, ledger)
    finally:
        server.stop()


@pytest.fixture()
def oc(shared: Gateway, sim: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{shared.server.url}/v1", api_key="unused", max_retries=0)


def row(shared: Gateway, headers: Any) -> dict[str, Any]:
    return wait_rows(shared.ledger, 1, id=headers["x-request-id"])[0]


def per_mtok(value: float) -> Decimal:
    return Decimal(str(value)) / Decimal(1_000_000)


@pytest.mark.parametrize("model", MODELS)
def test_create_answers_and_prices_from_the_upstreams_usage(
    oc: openai.OpenAI, shared: Gateway, model: str
) -> None:
    raw = oc.responses.with_raw_response.create(
        model=model, input="Tell me about gateways.", instructions="Be brief."
    )
    r = raw.parse()
    assert r.object == "response" and r.status == "completed" and r.output_text
    assert r.output[-1].type == "message"
    assert raw.headers["x-gateway-provider"] == PROVIDERS[model]
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    rec = row(shared, raw.headers)
    assert rec["endpoint"] == "responses" and rec["status_code"] == 200
    assert rec["requested_model"] == model and not rec["usage_estimated"]
    assert rec["prompt_tokens"] == r.usage.input_tokens
    assert rec["completion_tokens"] == r.usage.output_tokens
    assert rec["cached_prompt_tokens"] == r.usage.input_tokens_details.cached_tokens
    if model == NATIVE:
        assert rec["upstream_request_id"] == r.id  # the upstream's own Response
        price = NATIVE_PRICE
        expected = (
            per_mtok(price["input_per_mtok"]) * r.usage.input_tokens
            + per_mtok(price["output_per_mtok"]) * r.usage.output_tokens
        )
        assert rec["cost_usd"] == expected
    else:
        assert r.id == f"resp_{raw.headers['x-request-id']}"
    assert rec["cost_usd"] > 0 or model == "llama-3.1-8b"


def test_native_answer_is_the_upstreams_own(oc: openai.OpenAI, sim: ServerThread) -> None:
    direct = openai.OpenAI(base_url=f"{sim.url}/instant/v1", api_key="k", max_retries=0)
    want = direct.responses.create(model="gpt-4o-mini", input="Hi there")
    got = oc.responses.create(model=NATIVE, input="Hi there")
    assert got.output_text == want.output_text and got.usage == want.usage
    assert got.id.startswith("resp_") and got.model == "gpt-4o-mini"


@pytest.mark.parametrize("model", MODELS)
def test_stream_rebuilds_the_whole_answer(oc: openai.OpenAI, model: str) -> None:
    whole = oc.responses.create(model=model, input="Tell me about caching.")
    events = list(oc.responses.create(model=model, input="Tell me about caching.", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed" and kinds.count("response.completed") == 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == whole.output_text and final.usage == whole.usage
    with oc.responses.stream(model=model, input="Tell me about caching.") as s:
        for _ in s:
            pass
        helper = s.get_final_response()
    assert helper.output_text == whole.output_text and helper.status == "completed"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(oc: openai.OpenAI, model: str, stream: bool) -> None:
    tools: Any = [WEATHER]
    first: Any
    if stream:
        with oc.responses.stream(model=model, input=ASK, tools=tools) as s:
            for _ in s:
                pass
            first = s.get_final_response()
    else:
        first = oc.responses.create(model=model, input=ASK, tools=tools)
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    args = json.loads(calls[0].arguments)
    jsonschema.validate(args, WEATHER["parameters"])
    result: Any = [
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp": 21}'}
    ]
    second = oc.responses.create(
        model=model, previous_response_id=first.id, input=result, tools=tools
    )
    assert second.status == "completed" and second.output_text
    assert second.previous_response_id == first.id or model == NATIVE
    # the same conversation without stored state: the client sends it all
    earlier = [o.model_dump(exclude_none=True) for o in first.output]
    history: Any = [{"role": "user", "content": ASK}, *earlier, *result]
    stateless = oc.responses.create(model=model, input=history, tools=tools, store=False)
    assert stateless.output_text and stateless.usage is not None and second.usage is not None
    assert stateless.usage.input_tokens == second.usage.input_tokens


class Forecast(BaseModel):
    city: str
    days: int
    tags: list[str]


@pytest.mark.parametrize("model", [NATIVE, "gpt-4o-mini", "llama-3.1-8b", "gemini-flash"])
def test_structured_output_parses(oc: openai.OpenAI, model: str) -> None:
    parsed = oc.responses.parse(model=model, input="Forecast for Paris", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    text: Any = {"format": {"type": "json_schema", "name": "code", "schema": schema}}
    r = oc.responses.create(model=model, input="A code", text=text)
    jsonschema.validate(json.loads(r.output_text), schema)


def test_unknown_model_is_a_404(oc: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        oc.responses.create(model="no-such-model", input="hi")
    err = e.value.response.json()["error"]
    assert err["code"] == "model_not_found" and "gpt-4o-mini" in err["message"]


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"temperature": "hot"}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "input_file", "file_id": "f"}]}, "input[0].type"),
        ({"input": None}, "input"),
        ({"tool_choice": {"type": "function", "name": "nope"}, "tools": [WEATHER]}, "tool_choice"),
        ({"conversation": "conv_1"}, "conversation"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    oc: openai.OpenAI, shared: Gateway, kw: dict[str, Any], param: str
) -> None:
    body = {"model": "gpt-4o-mini", "input": "hi", **kw}
    with pytest.raises(openai.BadRequestError) as e:
        oc.responses.create(**body)
    assert e.value.response.json()["error"]["param"] == param
    rec = row(shared, e.value.response.headers)
    assert rec["endpoint"] == "responses" and rec["status_code"] == 400


def test_unknown_top_level_fields_are_ignored(oc: openai.OpenAI) -> None:
    r = oc.responses.create(
        model="claude-haiku",
        input="hi",
        extra_body={"client_metadata": {"x": 1}, "some_new_field": True},
    )
    assert r.status == "completed"


def test_hosted_tools_are_dropped_and_named_unless_the_upstream_runs_them(
    oc: openai.OpenAI,
) -> None:
    tools: Any = [
        {"type": "web_search"},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "some_future_tool"},
        {
            "type": "namespace",
            "name": "weather_mcp",
            "description": "weather tools",
            "tools": [WEATHER],
        },
    ]
    raw = oc.responses.with_raw_response.create(model="claude-haiku", input=ASK, tools=tools)
    assert (
        raw.headers["x-gateway-dropped-tools"] == "web_search, code_interpreter, some_future_tool"
    )
    call = next(o for o in raw.parse().output if o.type == "function_call")
    assert call.name == "get_weather" and call.namespace == "weather_mcp"
    native = oc.responses.with_raw_response.create(model=NATIVE, input=ASK, tools=tools[:1])
    assert "x-gateway-dropped-tools" not in native.headers
    forced: Any = {"type": "web_search"}
    with pytest.raises(openai.BadRequestError) as e:
        oc.responses.create(model="claude-haiku", input=ASK, tools=tools, tool_choice=forced)
    assert e.value.response.json()["error"]["param"] == "tool_choice"
    assert oc.responses.create(model=NATIVE, input=ASK, tools=tools[:1], tool_choice=forced).id


def test_codex_style_request(oc: openai.OpenAI) -> None:
    """What Codex CLI sends on every turn: developer messages, function tools, a namespace,
    the hosted web_search tool, reasoning summaries, encrypted reasoning, no storage."""
    body: Any = {
        "model": "claude-haiku",
        "instructions": "You are a coding agent. " * 400,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "sandbox: read-only"}],
            },  # fmt: skip
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is the weather in Paris?"}],
            },  # fmt: skip
        ],
        "tools": [WEATHER, {"type": "web_search"}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
        "stream": True,
        "prompt_cache_key": "session-1",
    }
    with oc.responses.stream(**{k: v for k, v in body.items() if k != "stream"}) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert [o.type for o in final.output][-1] == "function_call"
    with pytest.raises(openai.NotFoundError):
        oc.responses.retrieve(final.id)  # store: false


def test_mid_stream_failure_ends_with_response_failed(
    oc: openai.OpenAI, sim: ServerThread, shared: Gateway
) -> None:
    for upstream, model in (("instant", "gpt-4o-mini"), ("instant@native", NATIVE)):
        rule = {"upstream": upstream, "kind": "stream_error", "drop_after_chunks": 3, "count": 1}
        assert httpx.post(f"{sim.url}/sim/faults", json=rule).status_code == 200
        with httpx.stream(
            "POST",
            f"{shared.server.url}/v1/responses",
            json={"model": model, "input": "hi", "stream": True},
        ) as r:
            events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
            rid = r.headers["x-request-id"]
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.failed", events[-1]
        assert events[-1]["response"]["error"]["code"] == "server_error"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert wait_rows(shared.ledger, 1, id=rid)[0]["status_code"] == 502


def test_upstream_error_before_the_first_byte_is_an_http_error(
    oc: openai.OpenAI, sim: ServerThread
) -> None:
    rule = {"upstream": "instant@native", "status": 429, "retry_after": 3, "count": 1}
    assert httpx.post(f"{sim.url}/sim/faults", json=rule).status_code == 200
    with pytest.raises(openai.RateLimitError) as e:
        oc.responses.create(model=NATIVE, input="hi", stream=True)
    assert e.value.response.headers["retry-after"] == "3"
