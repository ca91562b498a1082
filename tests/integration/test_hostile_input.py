"""Hostile input against the real gateway on loopback: every limit is a clear 4xx in the
endpoint's own envelope — OpenAI's on the OpenAI endpoints, Anthropic's on /v1/messages —
never a 500, and every refusal (the middleware's 413 and 431 included) leaves one ledger row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.ledger.migrate import upgrade
from tests.conftest import GatewayFactory
from tests.integration.test_anthropic_chat import MODEL as CLAUDE
from tests.integration.test_anthropic_chat import Gateway, claude_config
from tests.support import ServerThread, gateway_server, wait_rows

USER = [{"role": "user", "content": "hi"}]
BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": USER},
    "/v1/completions": {"model": "gpt-4o-mini", "prompt": "hi"},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
    "/v1/messages": {"model": "gpt-4o-mini", "max_tokens": 5, "messages": USER},
}


@pytest.fixture(scope="module")
def gw(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Default limits; an Anthropic-kind model besides the OpenAI-kind and vLLM-kind ones."""
    from prometheus_client import CollectorRegistry

    from gateway.app import create_app

    ledger = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('hostile') / 'ledger.db'}"
    upgrade(ledger)
    server = gateway_server(create_app(claude_config(simulator.url, ledger), CollectorRegistry()))
    try:
        yield Gateway(server, ledger)
    finally:
        server.stop()


def nested(depth: int) -> str:
    """A JSON value `depth` levels deep (lists in an object in a list…)."""
    return "[" * depth + "]" * depth


def with_extra(path: str, extra: str) -> bytes:
    """The path's minimal body with `"x": <extra>` spliced in as raw JSON text."""
    import orjson

    return orjson.dumps(BODIES[path])[:-1] + b',"x":' + extra.encode() + b"}"


def assert_envelope(path: str, r: httpx.Response, status: int) -> dict[str, Any]:
    """The answer is `status` in the path's API's error envelope; returns the error object."""
    assert r.status_code == status, r.text[:300]
    body = r.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def row(gw: Gateway, r: httpx.Response) -> dict[str, Any]:
    rows = wait_rows(gw.ledger, 1, id=r.headers["x-request-id"])
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("depth", [65, 253, 254, 255, 300, 1000, 1024])
def test_deep_json_is_a_400_with_a_row(gw: Gateway, path: str, depth: int) -> None:
    # the body object is level 1 and "x" holds `depth` more: 255–1,024 were 500s before
    r = httpx.post(gw.server.url + path, content=with_extra(path, nested(depth)))
    err = assert_envelope(path, r, 400)
    assert "nests JSON" in err["message"] or "depth limit exceeded" in err["message"]
    got = row(gw, r)
    assert got["status_code"] == 400 and got["provider"] is None


@pytest.mark.parametrize("path", list(BODIES))
def test_nesting_up_to_the_limit_is_served(gw: Gateway, path: str) -> None:
    r = httpx.post(gw.server.url + path, content=with_extra(path, nested(63)))  # 64 in all
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama-3.1-8b", CLAUDE])
def test_deep_tool_input_on_messages_is_refused_before_translation(gw: Gateway, model: str) -> None:
    """A tool_use `input` nested 250 levels: translating it for a non-Claude model re-encodes
    it, which orjson cannot past 254 levels."""
    deep: Any = {}
    for _ in range(250):
        deep = {"a": deep}
    messages: Any = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": deep}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}],
        },
    ]
    ac = anthropic.Anthropic(base_url=gw.server.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        ac.messages.create(model=model, max_tokens=5, messages=messages)
    assert "limits.max_json_depth" in str(e.value)


def test_a_huge_model_name_is_clipped_in_the_404(gw: Gateway) -> None:
    oc = openai.OpenAI(base_url=f"{gw.server.url}/v1", api_key="unused", max_retries=0)
    name = "m" * 1_000_000
    with pytest.raises(openai.NotFoundError) as e:
        oc.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    body = e.value.response.content
    assert len(body) < 2_000
    assert b"mmmm" in body and b"(1,000,000 characters)" in body and b"gpt-4o-mini" in body
    got = wait_rows(gw.ledger, 1, id=e.value.response.headers["x-request-id"])[0]
    assert got["status_code"] == 404


def test_a_huge_value_in_a_translated_field_is_clipped(gw: Gateway) -> None:
    """Translators quote a bad value (a content block type, a role) through errors.echo."""
    kind = "k" * 200_000
    r = httpx.post(
        f"{gw.server.url}/v1/messages",
        json={
            "model": "gpt-4o-mini",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": kind}]}],
        },
    )
    err = assert_envelope("/v1/messages", r, 400)
    assert len(err["message"]) < 500 and "(200,000 characters)" in err["message"]


@pytest.mark.parametrize("path", [*BODIES, "/v1/models"])
@pytest.mark.parametrize(
    "headers",
    [{"x-big": "a" * 1_000_000}, {f"x-h{i}": "v" for i in range(8_000)}],
    ids=["1MB-header", "8000-headers"],
)
def test_oversized_headers_are_a_431(gw: Gateway, path: str, headers: dict[str, str]) -> None:
    if path == "/v1/models":
        r = httpx.get(gw.server.url + path, headers=headers)
    else:
        r = httpx.post(gw.server.url + path, json=BODIES[path], headers=headers)
    err = assert_envelope(path, r, 431)
    assert "limits.max_header" in err["message"]
    if path != "/v1/models":  # generation requests are the ledger's rows
        got = row(gw, r)
        assert got["status_code"] == 431 and got["error_type"] == "request_header_fields_too_large"


@pytest.mark.parametrize("path", list(BODIES))
def test_bodies_over_the_limit_are_a_413_with_a_row(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, path: str
) -> None:
    raw = claude_config(sim.url, sqlite_url).model_dump()
    raw["max_request_body_mb"] = 0.01  # 10,485 bytes
    from gateway.config import parse_config

    server = gateway_factory(parse_config(raw, source="test", environ={}))
    big = with_extra(path, '"' + "x" * 20_000 + '"')
    declared = httpx.post(server.url + path, content=big)

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield big[:5_000]
        yield big[5_000:]

    chunked = httpx.post(server.url + path, content=chunks())
    for r in (declared, chunked):
        assert_envelope(path, r, 413)
        got = row(Gateway(server, sqlite_url), r)
        assert got["status_code"] == 413 and got["error_type"] == "request_too_large"


@pytest.fixture()
def tight(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> Gateway:
    from gateway.config import parse_config

    raw = claude_config(sim.url, sqlite_url).model_dump()
    raw["limits"] = {
        "max_json_depth": 8,
        "max_messages": 4,
        "max_content_parts": 3,
        "max_header_bytes": 2048,
        "max_headers": 20,
    }
    return Gateway(gateway_factory(parse_config(raw, source="test", environ={})), sqlite_url)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_configured_limits_on_messages_and_parts(tight: Gateway, path: str) -> None:
    base = BODIES[path]
    url = tight.server.url + path
    text = {"type": "text", "text": "hi"}
    four = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * 2
    assert httpx.post(url, json={**base, "messages": four}).status_code == 200
    five = httpx.post(url, json={**base, "messages": [*four, *USER]})
    err = assert_envelope(path, five, 400)
    assert "maximum length 4" in err["message"] and "limits.max_messages" in err["message"]
    three = [{"role": "user", "content": [text] * 3}]
    assert httpx.post(url, json={**base, "messages": three}).status_code == 200
    many = httpx.post(url, json={**base, "messages": [{"role": "user", "content": [text] * 4}]})
    err = assert_envelope(path, many, 400)
    assert "messages[0].content" in err["message"] and "limits.max_content_parts" in err["message"]
    if path == "/v1/chat/completions":
        assert err["param"] == "messages" and err["code"] == "array_above_max_length"
    deep = httpx.post(url, content=with_extra(path, nested(8)))
    assert "more than 8 levels" in assert_envelope(path, deep, 400)["message"]
    for r in (five, many, deep):
        assert row(tight, r)["status_code"] == 400


def test_configured_header_limits(tight: Gateway) -> None:
    url = f"{tight.server.url}/v1/chat/completions"
    body = BODIES["/v1/chat/completions"]
    assert httpx.post(url, json=body, headers={"x-a": "a" * 1500}).status_code == 200
    assert httpx.post(url, json=body, headers={"x-a": "a" * 2100}).status_code == 431
    assert httpx.post(url, json=body, headers={f"x-{i}": "1" for i in range(10)}).status_code == 200
    assert httpx.post(url, json=body, headers={f"x-{i}": "1" for i in range(21)}).status_code == 431


def test_route_explain_holds_the_same_limits(gw: Gateway) -> None:
    r = httpx.post(
        f"{gw.server.url}/v1/route/explain",
        content=with_extra("/v1/chat/completions", nested(300)),
    )
    assert_envelope("/v1/route/explain", r, 400)


def test_a_405_has_its_row(gw: Gateway) -> None:
    r = httpx.get(f"{gw.server.url}/v1/messages")
    assert_envelope("/v1/messages", r, 405)
    assert row(gw, r)["status_code"] == 405
