"""Property tests: the request translators between OpenAI chat, Anthropic Messages and Gemini
fed arbitrary bodies of each wire shape (tests/unit/wire_strategies.py) through the gateway's
own parse step. A translation may refuse (InvalidRequest, a 400 naming the field) but never
fails otherwise, and what it sends upstream is JSON the provider's own types accept."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

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
    OPENAI_CHAT,
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
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
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
