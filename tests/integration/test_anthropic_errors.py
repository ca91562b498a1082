"""Every Anthropic error status through the gateway: to openai-SDK clients as OpenAI-shaped
errors with the same status (529 stays 529), to anthropic-SDK clients on /v1/messages in
Anthropic's shape; Retry-After kept; mid-stream failures in-band; the key never shown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.config import parse_config
from tests.conftest import GatewayFactory
from tests.integration.test_anthropic_chat import (
    KEY,
    MODEL,
    Gateway,
    chat,
    claude_config,
    claude_gateway,
)
from tests.integration.test_chat import MSG
from tests.support import ServerThread, fetch_rows, wait_rows

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
SDK_ERRORS = {
    400: anthropic.BadRequestError,
    401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError,
    413: anthropic.ContentTooLargeError,
    429: anthropic.RateLimitError,
    500: anthropic.InternalServerError,
    529: anthropic.OverloadedError,
}
USER: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def shared(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with claude_gateway(simulator.url, tmp_path_factory.mktemp("claude-errors")) as g:
        yield g


@pytest.fixture()
def gw(shared: Gateway, sim: ServerThread) -> ServerThread:
    return shared.server


@pytest.fixture()
def ledger(shared: Gateway) -> str:
    return shared.ledger


def row_of(ledger: str, response: httpx.Response | Any) -> dict[str, Any]:
    return wait_rows(ledger, 1, id=response.headers["x-request-id"])[0]


def fault(sim: ServerThread, upstream: str = "instant", **rule: Any) -> None:
    r = httpx.post(f"{sim.url}/sim/faults", json={"upstream": upstream, "count": 1, **rule})
    assert r.status_code == 200, r.text


def messages_client(gw: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("status", sorted(TYPES))
def test_openai_clients_get_the_status_and_type(
    gw: ServerThread, sim: ServerThread, ledger: str, status: int
) -> None:
    fault(sim, status=status, retry_after=7, message=f"simulated {status}")
    with pytest.raises(openai.APIStatusError) as e:
        chat(gw)
    assert e.value.status_code == status
    err = e.value.response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == TYPES[status] and err["message"] == f"anthropic: simulated {status}"
    assert e.value.response.headers["retry-after"] == "7"
    row = row_of(ledger, e.value.response)
    assert row["status_code"] == status and row["error_type"] == TYPES[status]
    assert row["provider"] == "anthropic"


@pytest.mark.parametrize("status", [429, 529])
def test_stream_errors_before_the_first_byte_keep_their_status(
    gw: ServerThread, sim: ServerThread, status: int
) -> None:
    fault(sim, status=status, retry_after=3)
    with pytest.raises(openai.APIStatusError) as e:
        list(chat(gw, stream=True))
    assert e.value.status_code == status and e.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("status", sorted(TYPES))
def test_anthropic_clients_get_anthropic_errors(
    gw: ServerThread, sim: ServerThread, status: int
) -> None:
    fault(sim, status=status, retry_after=5, message=f"simulated {status}")
    with pytest.raises(SDK_ERRORS[status]) as e:
        messages_client(gw).messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert e.value.status_code == status
    assert e.value.body == {
        "type": "error",
        "error": {"type": TYPES[status], "message": f"anthropic: simulated {status}"},
    }
    assert e.value.response.headers["retry-after"] == "5"


def test_bridged_model_errors_are_anthropic_shaped(gw: ServerThread, sim: ServerThread) -> None:
    fault(sim, status=429, retry_after=2)  # gpt-4o-mini lives on the same simulated upstream
    with pytest.raises(anthropic.RateLimitError) as e:
        messages_client(gw).messages.create(model="gpt-4o-mini", max_tokens=10, messages=USER)
    assert e.value.response.headers["retry-after"] == "2"
    assert _error_type(e.value) == "rate_limit_error"


def test_gateway_refusals_on_messages(gw: ServerThread, ledger: str) -> None:
    c = messages_client(gw)
    with pytest.raises(anthropic.NotFoundError) as e:
        c.messages.create(model="claude-9", max_tokens=10, messages=USER)
    assert _error_type(e.value) == "not_found_error"
    assert "claude-9" in str(e.value) and MODEL in str(e.value)
    url = f"{gw.url}/v1/messages"
    missing = httpx.post(url, json={"model": MODEL, "messages": USER})
    assert missing.status_code == 400
    assert missing.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    bad_role = httpx.post(
        url,
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
    )
    assert bad_role.status_code == 400 and "messages.0.role" in bad_role.text
    not_json = httpx.post(url, content=b"{")
    assert not_json.status_code == 400
    rows = [row_of(ledger, r) for r in (e.value.response, missing, bad_role, not_json)]
    assert [r["status_code"] for r in rows] == [404, 400, 400, 400]
    assert all(r["provider"] is None and r["endpoint"] == "messages" for r in rows)


def test_mid_stream_error_on_chat(gw: ServerThread, sim: ServerThread, ledger: str) -> None:
    fault(sim, kind="stream_error", status=529, drop_after_chunks=3, message="Overloaded")
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert '"type":"overloaded_error"' in body and body.endswith("data: [DONE]\n\n")
    assert '"finish_reason":"stop"' not in body
    row = row_of(ledger, r)
    assert row["status_code"] == 502 and row["error_type"] == "overloaded_error"
    assert row["prompt_tokens"] > 0  # message_start's counts were recorded


@pytest.mark.parametrize("model", [MODEL, "gpt-4o-mini"])
def test_mid_stream_error_on_messages(
    gw: ServerThread, sim: ServerThread, ledger: str, model: str
) -> None:
    fault(sim, kind="stream_error", status=529, drop_after_chunks=3)
    with (
        pytest.raises(anthropic.APIStatusError) as e,
        messages_client(gw).messages.stream(model=model, max_tokens=50, messages=USER) as s,
    ):
        list(s)
    assert "error" in str(e.value)
    row = row_of(ledger, e.value.response)
    assert row["status_code"] == 502 and row["stream"] is True


def test_dropped_stream_on_messages_ends_with_an_error_event(
    gw: ServerThread, sim: ServerThread, ledger: str
) -> None:
    fault(sim, kind="drop", drop_after_chunks=3)
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/messages",
        json={"model": MODEL, "max_tokens": 50, "messages": USER, "stream": True},
    ) as r:
        body = r.read().decode()
    assert body.rstrip().split("\n\n")[-1].startswith("event: error")
    row = row_of(ledger, r)
    assert row["status_code"] == 502 and row["error_type"] == "upstream_connection_error"


def test_timeout_is_504_on_both_endpoints(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    raw = claude_config(sim.url, sqlite_url).model_dump()
    raw["providers"][-1]["timeout_s"] = 0.3
    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    fault(sim, kind="timeout", delay_s=2)
    with pytest.raises(openai.APIStatusError) as e:
        chat(gw)
    assert e.value.status_code == 504
    fault(sim, kind="timeout", delay_s=2)
    with pytest.raises(anthropic.APIStatusError) as e2:
        messages_client(gw).messages.create(model=MODEL, max_tokens=5, messages=USER)
    assert e2.value.status_code == 504
    assert _error_type(e2.value) == "timeout_error"


def test_the_key_never_leaks(
    gw: ServerThread, sim: ServerThread, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for _ in range(2):  # an upstream that echoes the key it was sent
        fault(sim, status=401, message=f"invalid x-api-key: {KEY}")
    with pytest.raises(openai.AuthenticationError) as e:
        chat(gw)
    seen.append(e.value.response.text)
    with pytest.raises(anthropic.AuthenticationError) as e2:
        messages_client(gw).messages.create(model=MODEL, max_tokens=5, messages=USER)
    seen.append(e2.value.response.text)
    fault(
        sim,
        kind="stream_error",
        status=401,
        drop_after_chunks=2,
        message=f"invalid x-api-key: {KEY}",
    )
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        seen.append(r.read().decode())
    assert all("invalid x-api-key: ***" in s for s in seen)
    row_of(ledger, r)
    rows = fetch_rows(ledger)  # every row this module's gateway wrote
    assert all(KEY not in str(v) for row in rows for v in row.values())
    assert all(KEY not in s for s in seen) and KEY not in caplog.text


def _error_type(e: anthropic.APIStatusError) -> object:
    """`type` of Anthropic's error envelope, which the SDK keeps as `body` (typed `object`)."""
    body = e.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    return body["error"].get("type")
