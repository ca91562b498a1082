"""Bad inputs get the documented 4xx and leave the gateway serving; upstream failures map to
clear 4xx/5xx; nothing leaks the provider key."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from gateway.config import parse_config
from tests.conftest import GatewayFactory, sim_config
from tests.integration.test_chat import MSG, client
from tests.support import ServerThread, free_port, wait_rows


def _post(server: ServerThread, body: bytes | str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )


def _still_serving(server: ServerThread) -> None:
    r = client(server).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert r.choices[0].message.content


@pytest.mark.parametrize(
    "body, status, param",
    [
        ("{not json", 400, None),
        ('{"model": "gpt-4o-mini"}', 400, "messages"),
        ('{"model": "gpt-4o-mini", "messages": "hello"}', 400, "messages"),
        (
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}',
            400,
            "max_tokens",
        ),
        (
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": 9}',
            400,
            "temperature",
        ),
        ('{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
    ],
)
def test_bad_requests_get_openai_shaped_4xx(
    gateway: ServerThread, body: str, status: int, param: str | None
) -> None:
    r = _post(gateway, body)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == param
    assert r.headers["x-request-id"]
    _still_serving(gateway)


def test_unknown_model_lists_the_available_ones(gateway: ServerThread) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client(gateway).chat.completions.create(model="gpt-9", messages=MSG)
    assert (
        "gpt-9" in str(e.value) and "gpt-4o-mini" in str(e.value) and "llama-3.1-8b" in str(e.value)
    )


def test_oversize_body_is_413(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, sqlite_url, max_request_body_mb=0.01))
    big = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + "x" * 20_000 + '"}]}'
    r = _post(gw, big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no content-length: the limit is enforced while reading
        yield big.encode()

    r = httpx.post(f"{gw.url}/v1/chat/completions", content=chunked())
    assert r.status_code == 413
    _still_serving(gw)


def test_messages_errors_from_the_edge_come_in_anthropics_envelope(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, sqlite_url, max_request_body_mb=0.01))
    big = (
        '{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"'
        + "x" * 20_000
        + '"}]}'
    )

    def chunked() -> Iterator[bytes]:
        yield big.encode()

    for content in (big, chunked()):  # refused from content-length, or while reading
        r = httpx.post(f"{gw.url}/v1/messages", content=content)
        assert r.status_code == 413
        assert r.json() == {
            "type": "error",
            "error": {"type": "request_too_large", "message": r.json()["error"]["message"]},
        }
    r = httpx.get(f"{gw.url}/v1/messages")
    assert r.status_code == 405
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert "GET" in r.json()["error"]["message"]


def test_wrong_method_and_path(gateway: ServerThread) -> None:
    assert httpx.get(f"{gateway.url}/v1/chat/completions").status_code == 405
    r = httpx.get(f"{gateway.url}/v2/whatever")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_upstream_429_passes_through_with_retry_after(
    gateway: ServerThread, sim: ServerThread
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "kind": "status", "status": 429, "retry_after": 7, "count": 1},
    )
    r = _post(gateway, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["type"] == "rate_limit_error"
    _still_serving(gateway)


def test_upstream_500_stream_also_fails_cleanly_before_first_byte(
    gateway: ServerThread, sim: ServerThread
) -> None:
    httpx.post(f"{sim.url}/sim/faults", json={"upstream": "instant", "status": 500, "count": 1})
    with pytest.raises(openai.InternalServerError):
        list(
            client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        )


def test_upstream_timeout_is_504(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    cfg = sim_config(sim.url, sqlite_url)
    raw = cfg.model_dump()
    raw["providers"][0]["timeout_s"] = 0.3
    from gateway.config import parse_config

    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "kind": "timeout", "delay_s": 2, "count": 1},
    )
    r = _post(gw, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    rows = wait_rows(sqlite_url, 1, status_code=504)
    assert rows[0]["error_type"] == "upstream_timeout"


def test_unreachable_upstream_is_502(sqlite_url: str, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(sim_config(f"http://127.0.0.1:{free_port()}", sqlite_url))
    r = _post(gw, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_connection_error"


def test_stream_dropped_midway_ends_with_an_error_event(
    gateway: ServerThread, sim: ServerThread, sqlite_url: str
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "kind": "drop", "drop_after_chunks": 3, "count": 1},
    )
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert '"upstream_connection_error"' in body and body.endswith("data: [DONE]\n\n")
    row = wait_rows(sqlite_url, 1, stream=True)[0]
    assert row["status_code"] == 502 and row["error_type"] == "upstream_connection_error"
    assert row["usage_estimated"] is True


def test_provider_key_never_leaks(
    gateway: ServerThread, sim: ServerThread, sqlite_url: str
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={
            "upstream": "instant",
            "status": 401,
            "count": 1,
            "message": "Incorrect API key provided",
        },
    )
    r = _post(gateway, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}')
    assert r.status_code == 401 and "sk-test-secret-123" not in r.text
    rows = wait_rows(sqlite_url, 1)
    assert all("sk-test-secret-123" not in str(v) for row in rows for v in row.values())


def test_client_disconnect_stops_the_upstream_stream(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    cfg = sim_config(sim.url, sqlite_url)
    raw = cfg.model_dump()
    raw["providers"][1]["api_base"] = f"{sim.url}/llama-3.1-8b-h100/v1"  # ~6.5 ms a token
    from gateway.config import parse_config

    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    body = {
        "model": "llama-3.1-8b",
        "messages": MSG,
        "stream": True,
        "max_tokens": 2000,
        "ignore_eos": True,
    }
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body) as r:
        first = next(r.iter_raw())
        assert first.startswith(b"data: ")
    # the client is gone: the gateway must abort the upstream call and record what happened
    row = wait_rows(sqlite_url, 1, stream=True)[0]
    assert row["status_code"] == 499 and row["error_type"] == "client_disconnected"
    assert row["latency_ms"] < 5000  # 2,000 tokens would take ~13 s upstream
    stats = httpx.get(f"{sim.url}/sim/stats").json()["upstreams"]["llama-3.1-8b-h100"]
    assert stats["running"] == 0 and stats["finished"].get("abort") == 1


def test_a_client_that_leaves_a_json_request_cancels_the_upstream_call(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    """A whole answer nobody waits for: the upstream call is abandoned at once (the simulated
    vLLM counts an aborted request) and the row says 499, not 200."""
    raw = sim_config(sim.url, sqlite_url).model_dump()
    raw["providers"][1]["api_base"] = f"{sim.url}/llama-3.1-8b-h100/v1"  # paced, not instant
    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    metrics = f"{sim.url}/llama-3.1-8b-h100/metrics"
    aborted = 'vllm:request_success_total{engine="0",finished_reason="abort"'

    def aborts() -> float:
        for line in httpx.get(metrics).text.splitlines():
            if line.startswith(aborted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = aborts()
    body = {
        "model": "llama-3.1-8b",
        "messages": MSG,
        "max_tokens": 4000,
        "ignore_eos": True,  # ~20 s of decoding on the simulated H100
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=0.5)
    row = wait_rows(sqlite_url, 1)[0]
    assert row["status_code"] == 499 and row["error_type"] == "client_disconnected"
    assert row["provider"] == "local-llama" and row["latency_ms"] < 3000
    deadline = time.monotonic() + 3
    while aborts() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert aborts() == before + 1
