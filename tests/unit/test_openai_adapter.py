"""The OpenAI-family adapter on payloads built from the openai SDK's own types."""

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion_usage import (
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
)

from gateway.config import ProviderConfig
from gateway.core import ClientRequest, Price, Target, Usage
from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
from gateway.providers.openai import OpenAIAdapter
from tests.unit.streams import to_openai

PROVIDER = ProviderConfig(
    name="openai", kind="openai", api_base="http://127.0.0.1:1/v1/", api_key="sk-secret"
)
TARGET = Target("mini", "gpt-4o-mini", PROVIDER, Price.per_mtok(1, 1))
USAGE = CompletionUsage(
    prompt_tokens=120,
    completion_tokens=7,
    total_tokens=127,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=100),
    completion_tokens_details=CompletionTokensDetails(reasoning_tokens=3),
)


def _chunk(content: str | None, *, finish: str | None = None, usage: bool = False) -> bytes:
    choices = (
        [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    )
    c = ChatCompletionChunk(
        id="chatcmpl-1",
        object="chat.completion.chunk",
        created=1,
        model="gpt-4o-mini",
        choices=choices,
        usage=USAGE if usage else None,
    )
    return b"data: " + c.model_dump_json().encode() + b"\n\n"


def test_build_request_rewrites_model_and_forces_stream_usage() -> None:
    req = ClientRequest(
        "chat",
        {
            "model": "mini",
            "messages": [],
            "stream": True,
            "stream_options": {"include_usage": False},
            "seed": 7,
        },
        model="mini",
        stream=True,
    )
    up = OpenAIAdapter().build_request(req, TARGET)
    body = orjson.loads(up.body)
    assert body["model"] == "gpt-4o-mini" and body["seed"] == 7
    assert body["stream_options"] == {"include_usage": True}
    assert up.url == "http://127.0.0.1:1/v1/chat/completions"
    assert up.headers["authorization"] == "Bearer sk-secret"
    assert req.body["model"] == "mini"  # the client's dict is not mutated


def test_parse_response_reads_usage_details() -> None:
    resp = ChatCompletion(
        id="chatcmpl-9",
        object="chat.completion",
        created=1,
        model="gpt-4o-mini",
        usage=USAGE,
        choices=[
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hi"},
            }
        ],
    )
    raw = resp.model_dump_json().encode()
    r = OpenAIAdapter().parse_response(raw, ClientRequest("chat", {}, "mini"), TARGET)
    assert r.body == raw
    assert r.usage == Usage(120, 7, cached_prompt_tokens=100, reasoning_tokens=3)
    assert r.upstream_request_id == "chatcmpl-9"


def test_non_json_answer_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        OpenAIAdapter().parse_response(b"<html>", ClientRequest("chat", {}, "mini"), TARGET)


@pytest.mark.parametrize("client_wants_usage", [True, False])
def test_stream_usage_is_captured_and_hidden_unless_asked(client_wants_usage: bool) -> None:
    wire = (
        _chunk("Hel") + _chunk("lo", finish="stop") + _chunk(None, usage=True) + b"data: [DONE]\n\n"
    )
    req = ClientRequest("chat", {}, "mini", stream=True, include_usage=client_wants_usage)
    tr = OpenAIAdapter().stream_translator(req, TARGET)
    reads = [wire[i : i + 37] for i in range(0, len(wire), 37)]  # arbitrary network chunking
    out = b"".join(to_openai(tr, reads, client_wants_usage))
    assert tr.state.usage == Usage(120, 7, cached_prompt_tokens=100, reasoning_tokens=3)
    assert tr.state.upstream_request_id == "chatcmpl-1"
    assert tr.state.chunks == 2 and tr.state.done
    assert (b'"prompt_tokens":120' in out) is client_wants_usage
    assert out.endswith(b"data: [DONE]\n\n") and out.count(b"[DONE]") == 1
    assert tr.finish() == []


def test_native_stream_is_forwarded_byte_for_byte() -> None:
    wire = _chunk("Hel") + _chunk("lo", finish="stop") + b"data: [DONE]\n\n"
    tr = OpenAIAdapter().stream_translator(ClientRequest("chat", {}, "mini", stream=True), TARGET)
    assert b"".join(to_openai(tr, [wire], include_usage=False)) == wire


def test_stream_without_done_gets_one() -> None:
    tr = OpenAIAdapter().stream_translator(ClientRequest("chat", {}, "mini", stream=True), TARGET)
    out = to_openai(tr, [_chunk("x")], include_usage=False)
    assert out[-1] == b"data: [DONE]\n\n" and tr.state.done


def test_error_bodies_keep_status_and_message_only() -> None:
    body = (
        b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    )
    e = OpenAIAdapter().parse_error(429, body, {"retry-after": "3"}, TARGET)
    assert isinstance(e, UpstreamHTTPError)
    assert e.status_code == 429 and e.retryable and e.headers == {"retry-after": "3"}
    assert e.to_dict()["error"]["message"] == "openai: Rate limit reached"
    assert "sk-secret" not in e.body().decode()
