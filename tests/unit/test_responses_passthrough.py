"""The OpenAI adapter speaking Responses natively: the request it sends, usage read from the
answer and from the terminal events, everything else forwarded without being parsed."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config import parse_config
from gateway.core import ClientRequest, End, Price, Raw, StreamError, Target, Usage
from gateway.providers.openai import OpenAIAdapter
from gateway.providers.openai_responses import ResponsesPassthrough, usage_from_responses
from gateway.sse import Event

PRICE = Price.per_mtok(0.15, 0.6)
USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 5},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 8},
    "total_tokens": 120,
}


def target(responses_api: bool) -> Target:
    config = parse_config(
        {
            "providers": [
                {"name": "o", "kind": "openai", "api_key": "sk-x", "responses_api": responses_api}
            ],
            "models": [{"name": "m", "provider": "o", "upstream_model": "gpt-x"}],
        },
        source="t",
        environ={},
    )
    return Target("m", "gpt-x", config.providers[0], PRICE)


def request(stream: bool = False) -> ClientRequest:
    native = {"model": "m", "input": "hi", "tools": [{"type": "web_search"}], "stream": stream}
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return ClientRequest("responses", chat, "m", stream, native_body=native)


def test_only_a_provider_with_responses_api_gets_the_body_as_written() -> None:
    adapter = OpenAIAdapter()
    up = adapter.build_request(request(), target(True))
    assert up.url == "https://api.openai.com/v1/responses"
    assert orjson.loads(up.body) == {**request().native_body, "model": "gpt-x"}  # type: ignore[dict-item]
    assert up.headers["authorization"] == "Bearer sk-x"
    chat = adapter.build_request(request(), target(False))
    assert chat.url.endswith("/chat/completions") and orjson.loads(chat.body)["messages"]
    assert adapter.native(request(), target(True)) and not adapter.native(request(), target(False))


def test_the_native_answer_is_kept_and_priced_from_its_usage() -> None:
    body = orjson.dumps({"id": "resp_1", "object": "response", "output": [], "usage": USAGE})
    result = OpenAIAdapter().parse_response(body, request(), target(True))
    assert result.body == body and result.wire == "openai-responses"
    assert result.upstream_request_id == "resp_1"
    assert result.usage == Usage(100, 20, 40, 5, 8) == usage_from_responses(USAGE)


def event(kind: str, named: bool = True, **payload: Any) -> Event:
    data = orjson.dumps({"type": kind, **payload})
    raw = (b"event: " + kind.encode() + b"\n" if named else b"") + b"data: " + data
    return Event(raw, data, kind if named else None)


def test_stream_usage_comes_from_the_terminal_event() -> None:
    tr = ResponsesPassthrough()
    created = event("response.created", response={"id": "resp_1"})
    assert tr.feed(created) == [Raw(created.encode())]
    delta = event("response.output_text.delta", named=False, delta="x")
    assert tr.feed(delta) == [Raw(delta.encode(), content=True)]
    done = event("response.completed", response={"id": "resp_1", "usage": USAGE})
    assert tr.feed(done) == [Raw(done.encode()), End()]
    assert tr.state.usage == Usage(100, 20, 40, 5, 8) and tr.state.upstream_request_id == "resp_1"
    assert tr.state.chunks == 1 and tr.finish() == []


def test_a_failed_or_cut_native_stream_is_an_error_for_the_ledger() -> None:
    tr = ResponsesPassthrough()
    failed = event("response.failed", response={"id": "r", "error": {"code": "server_error", "message": "boom"}})  # fmt: skip
    out = tr.feed(failed)
    assert out[0] == Raw(failed.encode()) and isinstance(out[1], StreamError)
    assert out[1].message == "boom" and out[1].status == 502
    cut = ResponsesPassthrough()
    cut.feed(event("response.created", response={"id": "r"}))
    end = cut.finish()
    assert len(end) == 1 and isinstance(end[0], StreamError)


def test_only_openai_family_providers_may_say_responses_api() -> None:
    import pytest

    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match="responses_api"):
        parse_config(
            {
                "providers": [{"name": "a", "kind": "anthropic", "responses_api": True}],
                "models": [
                    {
                        "name": "m",
                        "provider": "a",
                        "price": {"input_per_mtok": 1, "output_per_mtok": 1},
                    }
                ],  # fmt: skip
            },
            source="t",
            environ={},
        )
