"""Routes through the real gateway and simulator: fallback, cooldown and recovery, no retry
after a stream started, explanations, spillover from a full GPU pool and back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.config import GatewayConfig, parse_config
from tests.conftest import GatewayFactory
from tests.integration.test_chat import MSG, client
from tests.support import ServerThread, wait_rows


def route_config(
    sim: str, db: str, *, policy: str = "ordered", gpu: bool = False, **reliability: Any
) -> GatewayConfig:
    primary: dict[str, Any] = {
        "name": "primary",
        "kind": "openai" if not gpu else "vllm",
        "api_base": f"{sim}/{'llama-3.1-8b-h100' if gpu else 'instant'}/v1",
        "timeout_s": 5 if gpu else 0.5,
    }
    if gpu:
        primary["gpu"] = {"name": "H100", "count": 1, "hourly_usd": 2.49}
        primary["capacity"] = {"max_in_flight": 2, "scrape_interval_s": 0.2}
    return parse_config(
        {
            "database_url": db,
            "ledger": {"flush_interval_ms": 20},
            "reliability": {"backoff_s": 0.01, **reliability},
            "providers": [
                primary,
                {"name": "backup", "kind": "openai", "api_base": f"{sim}/realistic-small/v1"},
            ],
            "models": [
                {"name": "a", "provider": "primary", "upstream_model": "gpt-4o-mini"},
                {"name": "b", "provider": "backup", "upstream_model": "gpt-4o-mini"},
            ],
            "routes": [{"name": "auto", "policy": policy, "candidates": ["a", "b"]}],
        },
        source="test",
        environ={},
    )


def fault(sim: ServerThread, **rule: Any) -> None:
    httpx.post(f"{sim.url}/sim/faults", json={"upstream": "instant", **rule}).raise_for_status()


def received(sim: ServerThread, upstream: str) -> int:
    ups = httpx.get(f"{sim.url}/sim/stats").json()["upstreams"]
    return int(ups.get(upstream, {}).get("requests", {}).get("chat", 0))


def post(gw: ServerThread, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": MSG, **body}
    )


@pytest.mark.parametrize(
    "rule", [{"status": 429}, {"status": 500}, {"status": 529}, {"kind": "timeout", "delay_s": 2}]
)
def test_falls_back_on_retryable_failures(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, rule: dict[str, Any]
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    fault(sim, count=1, **rule)
    r = post(gw)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-model"] == "b" and r.headers["x-gateway-route"] == "auto"
    row = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])[0]
    assert row["attempts"] == 2 and row["provider"] == "backup"
    assert row["route_reason"].startswith("ordered: a (primary) est $")
    text = httpx.get(f"{gw.url}/metrics").text
    assert "gateway_upstream_errors_total{error_type=" in text and 'provider="primary"' in text


def test_a_bad_request_is_not_retried_elsewhere(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    fault(sim, status=400, count=1)
    assert post(gw).status_code == 400
    assert received(sim, "realistic-small") == 0


def test_all_failing_keeps_a_common_status(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    httpx.post(
        f"{sim.url}/sim/faults",
        json=[
            {"upstream": "instant", "status": 429},
            {"upstream": "realistic-small", "status": 429},
        ],
    )
    r = post(gw)
    assert r.status_code == 429 and "all 2 attempts failed" in r.json()["error"]["message"]


def test_cooldown_skips_a_failing_deployment_then_probes_it(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url, cooldown_failures=2, cooldown_s=0.5))
    fault(sim, status=503, count=2)
    assert [post(gw).headers["x-gateway-model"] for _ in range(2)] == ["b", "b"]
    assert received(sim, "instant") == 2
    # the breaker is open: a is not even tried
    r = post(gw)
    assert r.headers["x-gateway-model"] == "b" and received(sim, "instant") == 2
    time.sleep(0.6)
    # half-open: one probe goes to a, succeeds, and a is back
    assert post(gw).headers["x-gateway-model"] == "a"
    assert post(gw).headers["x-gateway-model"] == "a"


def test_retry_after_cools_a_deployment_down(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    fault(sim, status=429, retry_after=1, count=1)
    assert post(gw).headers["x-gateway-model"] == "b"
    assert post(gw).headers["x-gateway-model"] == "b"  # a rests for its Retry-After
    assert received(sim, "instant") == 1
    time.sleep(1.1)
    assert post(gw).headers["x-gateway-model"] == "a"


def test_no_retry_once_a_stream_has_started(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    fault(sim, kind="drop", drop_after_chunks=2, count=1)
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200 and r.headers["x-gateway-model"] == "a"
        body = r.read().decode()
    assert '"upstream_connection_error"' in body
    assert received(sim, "realistic-small") == 0
    # a failure before the first byte still falls back
    fault(sim, status=500, count=1)
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200 and r.headers["x-gateway-model"] == "b"
        assert r.read().decode().endswith("data: [DONE]\n\n")


def test_explain_calls_no_upstream(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(
        route_config(
            sim.url,
            sqlite_url,
        )
    )
    r = httpx.post(
        f"{gw.url}/v1/route/explain",
        json={
            "model": "auto",
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
    )
    assert r.status_code == 200
    e = r.json()
    assert e["route"] == "auto" and e["order"] == ["a", "b"]
    assert {c["model"] for c in e["candidates"]} == {"a", "b"}
    assert all("expected_cost_usd" in c for c in e["candidates"])
    assert received(sim, "instant") == 0 and received(sim, "realistic-small") == 0
    ids = [m.id for m in client(gw).models.list()]
    assert "auto" in ids


def test_min_tier_header(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    raw = route_config(sim.url, sqlite_url).model_dump()
    raw["models"][1]["quality_tier"] = 3
    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"x-gateway-min-tier": "2"},
        json={"model": "auto", "messages": MSG},
    )
    assert r.headers["x-gateway-model"] == "b"
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"x-gateway-min-tier": "9"},
        json={"model": "auto", "messages": MSG},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_eligible_model"
    bad = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"x-gateway-min-tier": "x"},
        json={"model": "auto", "messages": MSG},
    )
    assert bad.status_code == 400


def test_spills_over_when_the_gpu_pool_is_full_and_returns_when_it_drains(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url, policy="local-first", gpu=True))
    assert post(gw).headers["x-gateway-model"] == "a"
    long = {"model": "a", "messages": MSG, "stream": True, "max_tokens": 300, "ignore_eos": True}
    with holding_two_streams(f"{gw.url}/v1/chat/completions", long):
        r = post(gw)
    assert r.headers["x-gateway-model"] == "b"
    row = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])[0]
    assert row["route_reason"].startswith("local-first: b (backup) est $")
    assert "a (primary" in row["route_reason"]
    assert post(gw).headers["x-gateway-model"] == "a"  # drained: back to the owned GPU


@contextmanager
def holding_two_streams(url: str, body: dict[str, Any]) -> Iterator[None]:
    """Inside: two long streams hold the GPU pool's two slots (max_in_flight: 2); on exit
    they have been read to the end."""
    started = threading.Barrier(3)

    def occupy() -> None:
        with httpx.stream("POST", url, json=body, timeout=30) as r:
            it = r.iter_raw()
            next(it)
            started.wait()
            for _ in it:
                pass

    threads = [threading.Thread(target=occupy) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait()
    try:
        yield
    finally:
        for t in threads:
            t.join()


# --- /v1/messages goes through the same executor -------------------------------------------------


def messages(gw: ServerThread, **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/messages",
        headers=kw.pop("headers", None),
        json={
            "model": "auto",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
            **kw,
        },
    )


@pytest.mark.parametrize(
    "rule", [{"status": 429}, {"status": 500}, {"kind": "timeout", "delay_s": 2}]
)
def test_messages_fall_back_on_retryable_failures(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, rule: dict[str, Any]
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    fault(sim, count=1, **rule)
    r = messages(gw)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "message"
    assert r.headers["x-gateway-model"] == "b" and r.headers["x-gateway-route"] == "auto"
    row = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])[0]
    assert (row["endpoint"], row["attempts"], row["provider"]) == ("messages", 2, "backup")
    assert row["route_reason"].startswith("ordered: a (primary) est $")
    # a stream falls back too, before its first byte
    fault(sim, count=1, **rule)
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/messages",
        json={
            "model": "auto",
            "max_tokens": 16,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ) as s:
        assert s.status_code == 200 and s.headers["x-gateway-model"] == "b"
        assert "event: message_stop" in s.read().decode()
    row = wait_rows(sqlite_url, 1, id=s.headers["x-request-id"])[0]
    assert (row["attempts"], row["provider"], row["status_code"]) == (2, "backup", 200)


def test_messages_all_failing_is_an_anthropic_error_with_the_common_status(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url))
    for upstream in ("instant", "realistic-small"):
        httpx.post(
            f"{sim.url}/sim/faults", json={"upstream": upstream, "status": 429, "count": 1}
        ).raise_for_status()
    r = messages(gw)
    assert r.status_code == 429
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "rate_limit_error"
    row = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])[0]
    assert (row["endpoint"], row["status_code"], row["attempts"]) == ("messages", 429, 2)


def test_messages_honour_the_min_tier_header(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    raw = route_config(sim.url, sqlite_url).model_dump()
    raw["models"][1]["quality_tier"] = 3
    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    assert messages(gw, headers={"x-gateway-min-tier": "2"}).headers["x-gateway-model"] == "b"
    r = messages(gw, headers={"x-gateway-min-tier": "9"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "No model behind `auto`" in r.json()["error"]["message"]
    assert messages(gw, headers={"x-gateway-min-tier": "x"}).status_code == 400


def test_messages_streams_count_against_the_gpu_pool(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(route_config(sim.url, sqlite_url, policy="local-first", gpu=True))
    long = {
        "model": "a",
        "max_tokens": 300,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with holding_two_streams(f"{gw.url}/v1/messages", long):  # Anthropic-API streams
        assert messages(gw).headers["x-gateway-model"] == "b"
    assert messages(gw).headers["x-gateway-model"] == "a"
