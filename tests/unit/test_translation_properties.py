"""Property tests: the translators between OpenAI chat, Anthropic Messages and Gemini fed
arbitrary bodies of each wire shape (tests/unit/wire_strategies.py) through the gateway's own
parse step. A request translation may refuse (InvalidRequest, a 400 naming the field) but never
fails otherwise, and what it sends upstream keeps the provider's structural rules; every
provider's whole answer renders, for both client APIs, as the client SDK's own type with the
upstream's text and tool calls."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from gateway.codecs.anthropic import MessagesCodec
from gateway.codecs.openai import OpenAICodec
from gateway.config import ModelConfig, ProviderConfig
from gateway.core import ClientRequest, Price, Target
from gateway.errors import InvalidRequest
from gateway.protocol.openai import parse_request
from gateway.providers.registry import adapter_for
from tests.unit.wire_strategies import (
    ANTHROPIC_BODY,
    HOSTILE_CHAT,
    HOSTILE_MESSAGES,
    JSON_OBJECT,
    NAME,
    OPENAI_CHAT,
    TEXT,
)

KINDS = ("openai", "vllm", "anthropic", "gemini")
TARGETS = {
    kind: Target(
        f"{kind}-model",
        f"{kind}-upstream",
        ProviderConfig(name=kind, kind=kind, api_base="http://127.0.0.1:1", api_key="k"),
        Price.per_mtok(1, 2),
        ModelConfig(name=f"{kind}-model", provider=kind),
    )
    for kind in KINDS
}
BLOCKS = {"text", "image", "tool_use", "tool_result"}
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples every run: CI is not a lottery
)


def translated(req: ClientRequest) -> dict[str, dict[str, Any] | None]:
    """Each provider kind's upstream body for `req` (None where it refused with a 400)."""
    out: dict[str, dict[str, Any] | None] = {}
    for kind, target in TARGETS.items():
        try:
            up = adapter_for(kind).build_request(req, target)
        except InvalidRequest:
            out[kind] = None
            continue
        body = orjson.loads(up.body)
        assert isinstance(body, dict)
        out[kind] = body
    return out


def assert_anthropic_accepts(body: dict[str, Any] | None) -> None:
    """The Messages API's structural rules (https://docs.anthropic.com/en/api/messages):
    user and assistant turns that alternate, typed content blocks, text-only `system`,
    `max_tokens` always. (The anthropic SDK's request types are TypedDicts of Iterables,
    which pydantic validates lazily: no check at all.)"""
    if body is None:
        return
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] >= 1
    turns = body["messages"]
    assert all(t["role"] in ("user", "assistant") for t in turns)
    assert all(a["role"] != b["role"] for a, b in zip(turns, turns[1:], strict=False))
    for t in turns:
        assert isinstance(t["content"], list)
        assert all(isinstance(b, dict) and b.get("type") in BLOCKS for b in t["content"])
    for block in body.get("system") or []:
        assert block["type"] == "text" and isinstance(block["text"], str)


@SETTINGS
@given(OPENAI_CHAT)
def test_openai_chat_bodies_translate_for_every_provider(body: dict[str, Any]) -> None:
    req = OpenAICodec("chat").parse(orjson.dumps(body), [])  # valid: the check accepts it
    out = translated(req)
    assert out["openai"] is not None and out["vllm"] is not None  # their own wire, as sent
    assert_anthropic_accepts(out["anthropic"])
    gemini = out["gemini"]
    if gemini is not None:
        assert all(c["role"] in ("user", "model") and c["parts"] for c in gemini["contents"])


@SETTINGS
@given(ANTHROPIC_BODY)
def test_messages_bodies_translate_for_every_provider(body: dict[str, Any]) -> None:
    try:
        req = MessagesCodec().parse(orjson.dumps(body), [])
    except InvalidRequest:  # blocks the bridge cannot carry (thinking in a user turn…)
        return
    # the bridge's neutral body passes the OpenAI check, so every OpenAI-family model takes it
    parse_request("chat", orjson.dumps(req.body))
    out = translated(req)
    assert out["anthropic"] is not None  # native: the client's body with the upstream's model
    assert out["anthropic"]["messages"] == body["messages"]
    # Anthropic → neutral → Anthropic (an OpenAI-shaped request for a Claude model)
    chat = ClientRequest("chat", req.body, "m", req.stream)
    try:
        again = adapter_for("anthropic").build_request(chat, TARGETS["anthropic"])
    except InvalidRequest:
        return
    assert_anthropic_accepts(orjson.loads(again.body))


@SETTINGS
@given(HOSTILE_CHAT)
def test_hostile_chat_bodies_are_refused_cleanly(body: dict[str, Any]) -> None:
    try:
        req = OpenAICodec("chat").parse(orjson.dumps(body), [])
    except InvalidRequest:
        return
    translated(req)  # only InvalidRequest may escape


@SETTINGS
@given(HOSTILE_MESSAGES)
def test_hostile_messages_bodies_are_refused_cleanly(body: dict[str, Any]) -> None:
    try:
        req = MessagesCodec().parse(orjson.dumps(body), [])
    except InvalidRequest:
        return
    translated(req)


@pytest.mark.parametrize(
    "extra",
    [
        {"reasoning_effort": {}},  # was a TypeError (unhashable) on a Gemini model: a 500
        {"reasoning_effort": ["high"]},
    ],
)
def test_found_by_these_properties(extra: dict[str, Any]) -> None:
    req = ClientRequest("chat", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "m")
    req.body.update(extra)
    with pytest.raises(InvalidRequest):
        adapter_for("gemini").build_request(req, TARGETS["gemini"])


# --- answers: each provider's whole answer, rendered for each client API ----------------------

_CALLS = st.lists(st.tuples(NAME, JSON_OBJECT), max_size=2)


@st.composite
def upstream_answer(draw: st.DrawFn, kind: str) -> tuple[bytes, str, list[Any]]:
    """(the upstream's answer body, its text, its tool calls as (name, arguments))."""
    texts, calls = draw(st.lists(TEXT, max_size=3)), draw(_CALLS)
    text = "".join(texts)
    if kind in ("openai", "vllm"):
        message: dict[str, Any] = {"role": "assistant", "content": text if texts else None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": n, "arguments": orjson.dumps(a).decode()},
                }
                for i, (n, a) in enumerate(calls)
            ]
        finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
        body: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
    elif kind == "anthropic":
        blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
        blocks += [
            {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a}
            for i, (n, a) in enumerate(calls)
        ]
        if draw(st.booleans()):
            blocks.insert(0, {"type": "thinking", "thinking": "hm", "signature": "s"})
        body = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": blocks,
            "stop_reason": draw(st.sampled_from(["end_turn", "max_tokens", "tool_use"])),
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    else:
        parts: list[dict[str, Any]] = [{"text": t} for t in texts]
        parts += [{"functionCall": {"name": n, "args": a}} for n, a in calls]
        if draw(st.booleans()):
            parts.insert(0, {"text": "thinking…", "thought": True})
        body = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"])),
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 4,
                "totalTokenCount": 7,
            },
            "responseId": "r1",
        }
    return orjson.dumps(body), text, list(calls)


CHAT_REQUEST = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
MESSAGES_REQUEST = (
    b'{"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}'
)


@SETTINGS
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_any_answer_renders_for_both_client_apis(kind: str, data: st.DataObject) -> None:
    raw, text, calls = data.draw(upstream_answer(kind))
    adapter, target = adapter_for(kind), TARGETS[kind]
    for codec in (OpenAICodec("chat"), MessagesCodec()):
        req = codec.parse(CHAT_REQUEST if codec.endpoint == "chat" else MESSAGES_REQUEST, [])
        out = orjson.loads(codec.render(adapter.parse_response(raw, req, target), req))
        if codec.endpoint == "chat":
            chat = ChatCompletion.model_validate(out)
            message = chat.choices[0].message
            got = [
                (c.function.name, orjson.loads(c.function.arguments))
                for c in message.tool_calls or []
                if c.type == "function"
            ]
            assert (message.content or "", got) == (text, calls)
        else:
            m = Message.model_validate(out)
            blocks = m.content
            said = "".join(b.text for b in blocks if b.type == "text")
            assert said == text
            assert [(b.name, b.input) for b in blocks if b.type == "tool_use"] == calls
