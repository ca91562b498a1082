"""The Responses codec's pure parts: request translation, the Response object, the event
stream — each object and event validated against the openai SDK's own types."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.codecs.responses import ResponsesCodec
from gateway.codecs.responses_output import from_chat, replayable
from gateway.codecs.responses_request import ResponsesRequest
from gateway.codecs.responses_stream import ResponsesStreamRenderer
from gateway.core import (
    End,
    Finish,
    Raw,
    Reasoning,
    Start,
    StreamError,
    Text,
    ToolCall,
    Usage,
    UsageReport,
)
from gateway.errors import GatewayError, InvalidRequest
from gateway.sse import SSEDecoder

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
FN = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def parse(**body: Any) -> ResponsesRequest:
    raw = orjson.dumps({"model": "m", "input": "hi", **body})
    req = ResponsesCodec().parse(raw, [])
    assert isinstance(req, ResponsesRequest)
    req.id, req.created_at = "resp_" + "0" * 32, 1_700_000_000
    return req


def test_items_become_chat_messages() -> None:
    req = parse(
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "sandbox"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look: "},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AA",
                        "detail": "low",
                    },
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "two"}],
            },  # fmt: skip
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        ],
        max_output_tokens=50,
        temperature=0.5,
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        reasoning={"effort": "low", "summary": "auto"},
        metadata={"k": "v"},
        store=False,
        prompt_cache_key="p",
    )
    assert req.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "sandbox"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look: "},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },  # fmt: skip
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]
    body = req.body
    assert body["max_completion_tokens"] == 50 and body["temperature"] == 0.5
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}},
    }
    assert body["reasoning_effort"] == "low" and body["prompt_cache_key"] == "p"
    assert "metadata" not in body and "store" not in body and not req.store
    assert req.native_body is not None and req.native_body["metadata"] == {"k": "v"}


def test_tools_are_flattened_and_hosted_ones_dropped() -> None:
    req = parse(
        tools=[
            FN,
            {"type": "web_search"},
            {"type": "namespace", "name": "ns", "description": "d", "tools": [{**FN, "name": "h"}]},
            {"type": "brand_new"},
        ],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "h"}],
        },  # fmt: skip
        parallel_tool_calls=False,
    )
    assert [t["function"]["name"] for t in req.body["tools"]] == ["h"]
    assert req.body["tool_choice"] == "required" and req.body["parallel_tool_calls"] is False
    assert req.dropped_tools == ("web_search", "brand_new") and req.namespaces == {"h": "ns"}
    assert req.native_only is None
    forced = parse(tools=[FN, {"type": "web_search"}], tool_choice={"type": "web_search"})
    assert isinstance(forced.native_only, InvalidRequest)
    assert forced.native_only.param == "tool_choice"
    named = parse(tools=[FN], tool_choice={"type": "function", "name": "get_weather"})
    assert named.body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": [{"type": "input_file", "file_id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
        ),  # fmt: skip
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"tools": [FN, FN]}, "tools"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"text": {"format": {"type": "yaml"}}}, "text"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"model": ""}, "model"),
        ({"input": 5}, "input"),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse(**body)
    assert e.value.param == param


CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "upstream-model",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "reasoning_content": "The user wants weather.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "h", "arguments": "{}"},
                    }
                ],
            },
        }
    ],
}
USAGE = Usage(prompt_tokens=30, completion_tokens=12, cached_prompt_tokens=10, reasoning_tokens=4)


def test_a_chat_answer_becomes_a_valid_response() -> None:
    req = parse(tools=[{"type": "namespace", "name": "ns", "description": "", "tools": [{**FN, "name": "h"}]}])  # fmt: skip
    r = Response.model_validate(from_chat(req, CHAT, USAGE))
    assert [o.type for o in r.output] == ["reasoning", "message", "function_call"]
    assert r.output_text == "Let me check." and r.status == "completed"
    call = r.output[2]
    assert call.type == "function_call" and call.call_id == "call_1" and call.namespace == "ns"
    assert r.usage is not None and r.usage.input_tokens == 30
    assert r.usage.input_tokens_details.cached_tokens == 10
    assert r.usage.output_tokens_details.reasoning_tokens == 4 and r.usage.total_tokens == 42
    assert r.model == "upstream-model" and r.tools[0].type == "namespace"
    cut = {**CHAT, "choices": [{"index": 0, "finish_reason": "length", "message": {"content": "ab"}}]}  # fmt: skip
    r2 = Response.model_validate(from_chat(req, cut, USAGE))
    assert r2.status == "incomplete" and r2.incomplete_details is not None
    assert r2.incomplete_details.reason == "max_output_tokens"
    again = replayable(from_chat(req, CHAT, USAGE)["output"])
    assert again == [
        {"type": "message", "role": "assistant", "content": "Let me check."},
        {"type": "function_call", "call_id": "call_1", "name": "h", "arguments": "{}"},
    ]


def events(data: bytes) -> list[Any]:
    out = []
    for ev in SSEDecoder().feed(data):
        obj = orjson.loads(ev.data)
        assert ev.event == obj["type"]
        out.append(EVENTS.validate_python(obj))
    return out


def test_typed_chunks_become_the_event_sequence() -> None:
    req = parse(tools=[FN])
    kept: list[dict[str, Any]] = []
    req.keep = lambda r: kept.append(r.response or {})
    renderer = ResponsesStreamRenderer(req)
    data = renderer.render([Start("up", "upstream-model", 1)])
    data += renderer.render([Reasoning("Think"), Reasoning("ing.")])
    data += renderer.render([Text("Hel"), Text("lo")])
    data += renderer.render([ToolCall(0, "", "call_1", "get_weather"), ToolCall(0, '{"a"')])
    data += renderer.render([ToolCall(0, ":1}"), ToolCall(1, "{}", "call_2", "get_weather")])
    data += renderer.render([Finish("tool_calls"), UsageReport(USAGE), End()])
    evs = events(data)
    assert [e.sequence_number for e in evs] == list(range(len(evs)))
    kinds = [e.type for e in evs]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert (
        kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 4
    )
    assert "response.reasoning_summary_text.delta" in kinds
    assert kinds[-1] == "response.completed"
    final = evs[-1].response
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call", "function_call"]  # fmt: skip
    assert final.output[2].arguments == '{"a":1}' and final.output_text == "Hello"
    assert final.usage.input_tokens == 30 and kept and kept[0]["id"] == req.id
    joined = "".join(e.delta for e in evs if e.type == "response.function_call_arguments.delta")
    assert joined == '{"a":1}{}'


def test_a_cut_answer_is_incomplete_and_a_failure_is_failed() -> None:
    req = parse()
    r = ResponsesStreamRenderer(req)
    evs = events(r.render([Start("", "m", 0), Text("a"), Finish("length"), End()]))
    assert evs[-1].type == "response.incomplete"
    assert evs[-1].response.incomplete_details.reason == "max_output_tokens"
    r = ResponsesStreamRenderer(parse())
    evs = events(r.render([Start("", "m", 0), Text("a"), StreamError("x", "boom", 429)]))
    assert evs[-1].type == "response.failed"
    assert evs[-1].response.error.code == "rate_limit_exceeded"
    assert r.render([Text("late")]) == b""
    evs = events(ResponsesStreamRenderer(parse()).fail(GatewayError("gone")))
    assert [e.type for e in evs] == ["response.created", "response.in_progress", "response.failed"]


def test_native_events_pass_through_and_a_cut_native_stream_fails_in_sequence() -> None:
    req = parse()
    kept: list[str] = []
    req.keep = lambda r: kept.append((r.response or {})["id"])
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_up", "object": "response", "created_at": 1, "model": "m", "output": [], "status": "in_progress", "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}}  # fmt: skip
    first = b"event: response.created\ndata: " + orjson.dumps(created) + b"\n\n"
    r = ResponsesStreamRenderer(req)
    assert r.render([Raw(first)]) == first
    evs = events(r.render([StreamError("api_error", "cut")]))
    assert evs[0].type == "response.failed" and evs[0].sequence_number == 1
    assert evs[0].response.id == "resp_up" and not kept
    done = {**created, "type": "response.completed", "sequence_number": 1}
    done["response"] = {**created["response"], "status": "completed"}  # type: ignore[dict-item]
    last = b"event: response.completed\ndata: " + orjson.dumps(done) + b"\n\n"
    r = ResponsesStreamRenderer(req)
    assert r.render([Raw(first), Raw(last), End()]) == first + last
    assert kept == ["resp_up"]
