"""Rate limits, budgets, soft warnings and degraded routes on a real gateway — with counters
in process and in the machine's Redis — and serving on when Redis is unreachable."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import REDIS_URL, GatewayFactory
from tests.governance_support import AdminClient, gov_config
from tests.support import ServerThread, free_port, wait_rows

# 1,000 USD per 1M tokens: a request of ~10 tokens costs about a cent, budgets run out fast
PRICEY = {
    "name": "pricey",
    "provider": "openai",
    "upstream_model": "gpt-4o-mini",
    "price": {"input_per_mtok": 1000, "output_per_mtok": 1000},
}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def config(sim: ServerThread, db: str, redis_prefix: str | None, **extra: Any) -> Any:
    models = [*extra.pop("models", []), PRICEY]
    base = gov_config(sim.url, db)
    raw_models = [m.model_dump(exclude_none=True) for m in base.models] + models
    if redis_prefix is not None:
        extra["redis_url"] = REDIS_URL
        extra["governance"] = {"redis_key_prefix": redis_prefix, **extra.get("governance", {})}
    return gov_config(sim.url, db, models=raw_models, **extra)


@pytest.fixture(params=["in-process", "redis"])
def prefix(request: pytest.FixtureRequest, redis_prefix: str) -> str | None:
    return None if request.param == "in-process" else redis_prefix


def metric(gw: ServerThread, name: str) -> float:
    text = httpx.get(f"{gw.url}/metrics").text
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)} (\S+)$", text, re.M))


def test_requests_per_minute_with_openai_headers(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, prefix: str | None
) -> None:
    gw = gateway_factory(config(sim, sqlite_url, prefix))
    admin = AdminClient(gw.url)
    admin.team("t", rpm=10)
    key = admin.key("t", rpm=3)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    for left in (2, 1, 0):
        raw = client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
        assert raw.headers["x-ratelimit-limit-requests"] == "3"  # the key's, the tighter
        assert raw.headers["x-ratelimit-remaining-requests"] == str(left)
        # the window is full again 60-61 s after this request (to 0.1 s, rounded up)
        assert re.fullmatch(r"1m(0(\.\d)?|1)s", raw.headers["x-ratelimit-reset-requests"])
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert 55 <= int(e.value.response.headers["retry-after"]) <= 61
    assert e.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    err = e.value.body
    assert isinstance(err, dict) and err["code"] == "rate_limit_exceeded"
    assert err["type"] == "requests" and "Limit 3, Used 3" in err["message"]
    messages = httpx.post(
        f"{gw.url}/v1/messages",
        json={
            "model": "gpt-4o-mini",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers={"x-api-key": key["key"]},
    )
    assert messages.status_code == 429 and messages.headers["retry-after"]
    assert messages.json()["error"]["type"] == "rate_limit_error"
    # the team's limit covers its other keys: 3 + 7 = 10
    other = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=admin.key("t")["key"], max_retries=0)
    for _ in range(7):
        other.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError):
        other.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert metric(gw, 'gateway_rate_limited_total{limit="requests",scope="key"}') == 2
    assert metric(gw, 'gateway_rate_limited_total{limit="requests",scope="team"}') == 1
    rows = wait_rows(sqlite_url, 3, status_code=429)
    assert {r["error_type"] for r in rows} == {"rate_limit_exceeded"}


def test_tokens_per_minute_count_the_completion_after_the_call(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, prefix: str | None
) -> None:
    gw = gateway_factory(config(sim, sqlite_url, prefix, ledger={"flush_interval_ms": 5}))
    admin = AdminClient(gw.url)
    admin.team("t")
    key = admin.key("t", tpm=60)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(**CHAT, max_tokens=40)  # type: ignore[call-overload]
    assert raw.headers["x-ratelimit-limit-tokens"] == "60"
    prompt_only = 60 - int(raw.headers["x-ratelimit-remaining-tokens"])
    usage = raw.parse().usage
    assert usage is not None
    completion = usage.completion_tokens
    assert prompt_only < 10 < completion
    deadline = time.monotonic() + 5
    while True:  # settled once the ledger writer has the row
        try:
            raw = client.chat.completions.with_raw_response.create(**CHAT, max_tokens=1)  # type: ignore[call-overload]
        except openai.RateLimitError as e:
            assert e.response.json()["error"]["type"] == "tokens"
            break
        assert time.monotonic() < deadline, "completion tokens were never charged"
        time.sleep(0.05)


def test_a_team_budget_warns_then_refuses_with_what_was_spent(
    sim: ServerThread,
    sqlite_url: str,
    gateway_factory: GatewayFactory,
    prefix: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = gateway_factory(config(sim, sqlite_url, prefix, ledger={"flush_interval_ms": 5}))
    admin = AdminClient(gw.url)
    admin.team("research", budget_usd_day="0.3")
    key = admin.key("research")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key["key"], max_retries=0)
    body = {**CHAT, "model": "pricey", "max_tokens": 8}
    warned, refused = False, None
    with caplog.at_level(logging.WARNING, logger="gateway.governance"):
        for _ in range(40):
            try:
                raw = client.chat.completions.with_raw_response.create(**body)  # type: ignore[call-overload]
            except openai.RateLimitError as e:
                refused = e
                break
            warning = raw.headers.get("x-gateway-budget-warning")
            if warning:
                warned = True
                assert warning.startswith("team research daily budget ")
                assert "of $0.3, resets" in warning
            time.sleep(0.03)  # let the row (and so the settlement) land
    assert warned and refused is not None
    err = refused.body
    assert isinstance(err, dict) and err["type"] == "budget_exceeded"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    budget = err["budget"]
    assert budget["scope"] == "team" and budget["name"] == "research"
    assert budget["window"] == "day" and budget["limit_usd"] == "0.3"
    assert budget["resets_at"] == tomorrow.isoformat()
    assert "Budget exceeded" in err["message"] and tomorrow.isoformat() in err["message"]
    assert int(refused.response.headers["retry-after"]) > 0
    assert len([r for r in caplog.records if "soft budget passed" in r.getMessage()]) == 1
    # the Anthropic envelope on /v1/messages
    r = httpx.post(
        f"{gw.url}/v1/messages",
        json={"model": "pricey", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": key["key"]},
    )
    assert r.status_code == 429 and r.json()["type"] == "error"
    assert "Budget exceeded" in r.json()["error"]["message"]
    served = wait_rows(sqlite_url, 1, status_code=200, team="research")
    spent = sum(Decimal(row["cost_usd"]) for row in served)
    assert Decimal(budget["spent_usd"]) <= spent <= Decimal("0.3")
    assert metric(gw, 'gateway_budget_refusals_total{scope="team",window="day"}') == 2
    assert metric(gw, 'gateway_budget_warnings_total{scope="team",window="day"}') >= 1


def test_past_the_soft_budget_a_route_degrades_to_cheap_candidates(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    route = {
        "name": "smart",
        "policy": "ordered",
        "candidates": ["pricey", "llama-3.1-8b"],
        "degrade_max_usd_per_mtok": 1.0,
    }
    gw = gateway_factory(
        config(sim, sqlite_url, None, routes=[route], governance={"soft_budget_fraction": 0.1})
    )
    admin = AdminClient(gw.url)
    admin.team("t", budget_usd_day="1")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=admin.key("t")["key"], max_retries=0)
    body = {**CHAT, "model": "smart", "max_tokens": 60}
    served = []
    for _ in range(30):
        raw = client.chat.completions.with_raw_response.create(**body)  # type: ignore[call-overload]
        served.append(raw.headers["x-gateway-model"])
        if served[-1] == "llama-3.1-8b":
            break
        time.sleep(0.05)
    assert served[0] == "pricey" and served[-1] == "llama-3.1-8b"
    row = wait_rows(sqlite_url, 1, upstream_model="meta-llama/Llama-3.1-8B-Instruct")[0]
    assert "pricey (" in row["route_reason"] and "budget cap $1/1M" in row["route_reason"]


def test_when_redis_is_unreachable_the_gateway_serves_on_local_counters(
    sim: ServerThread,
    sqlite_url: str,
    gateway_factory: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="gateway.governance"):
        gw = gateway_factory(
            gov_config(sim.url, sqlite_url, redis_url=dead, governance={"redis_timeout_s": 0.2})
        )
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    ready = httpx.get(f"{gw.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["governance"]["counters"] == "local (redis unreachable)"
    assert metric(gw, "gateway_governance_redis_up") == 0
    admin = AdminClient(gw.url)
    admin.team("t")
    client = openai.OpenAI(
        base_url=f"{gw.url}/v1", api_key=admin.key("t", rpm=2)["key"], max_retries=0
    )
    client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError):  # still limited, by this replica alone
        client.chat.completions.create(**CHAT)  # type: ignore[call-overload]


def test_every_way_a_request_ends_settles_its_reservation(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, redis_prefix: str
) -> None:
    """Success, an upstream error, a stream the client walked away from: each releases its
    reservation and charges what the ledger says it cost."""
    import redis

    cfg = config(sim, sqlite_url, redis_prefix, ledger={"flush_interval_ms": 10})
    raw = cfg.model_dump()
    raw["providers"][1]["api_base"] = f"{sim.url}/llama-3.1-8b-h100/v1"  # ~6.5 ms a token
    raw["providers"][0]["api_key"] = "sk-test-secret-123"
    from gateway.config import parse_config

    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    admin = AdminClient(gw.url)
    admin.team("t", budget_usd_day="100")
    key = admin.key("t", budget_usd_month="100")
    headers = {"authorization": f"Bearer {key['key']}"}
    url = f"{gw.url}/v1/chat/completions"
    assert httpx.post(url, json={**CHAT, "max_tokens": 50}, headers=headers).status_code == 200
    httpx.post(f"{sim.url}/sim/faults", json={"upstream": "instant", "status": 500, "count": 1})
    assert httpx.post(url, json={**CHAT, "max_tokens": 50}, headers=headers).status_code == 500
    body = {
        "model": "llama-3.1-8b",
        "messages": CHAT["messages"],
        "stream": True,
        "max_tokens": 2000,
        "ignore_eos": True,
    }
    with httpx.stream("POST", url, json=body, headers=headers) as r:
        assert next(r.iter_raw()).startswith(b"data: ")
    rows = wait_rows(sqlite_url, 3, api_key_id=key["id"])
    assert sorted(r["status_code"] for r in rows) == [200, 499, 500]
    nano = Decimal(1_000_000_000)
    charged = sum(int(-(-r["cost_usd"] * nano // 1)) for r in rows)  # rounded up, as settled
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    deadline = time.monotonic() + 5
    while True:
        state = client.hgetall(f"{redis_prefix}s:k:{key['id']}")
        if int(state.get("r", 1)) == 0 and int(state.get("m", 0)) == charged:
            break
        assert time.monotonic() < deadline, (state, charged)
        time.sleep(0.05)
    assert (
        charged > 0 and int(state["d"]) == charged
    )  # the key has no daily budget: counted all the same
    client.close()
