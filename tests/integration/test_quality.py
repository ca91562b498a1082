"""Quality evidence through the real gateway and simulator: shadow calls after the answer,
linked and priced in the ledger (SQLite and PostgreSQL), sampled at the configured rate, off
the primary's path when the reference is slow, stopped by the daily cap and the concurrency
limit, and the evidence read back by `/admin/quality`."""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import GatewayConfig
from gateway.ledger.db import create_engine
from gateway.ledger.tables import quality_pairs_table
from gateway.quality.intervals import wilson
from gateway.state import AppState
from tests.conftest import GatewayFactory, sim_config
from tests.governance_support import MASTER, MASTER_HEADERS, AdminClient
from tests.support import ServerThread, fetch_rows, wait_rows

SYSTEM = "Classify the support ticket as billing, technical or other. Answer with the label."


REFERENCE_UPSTREAM = "instant@reference"  # the reference's own simulator upstream


def quality_config(
    sim: str,
    db: str,
    *,
    auth: dict[str, Any] | None = None,
    judge: str | None = None,
    **shadow: Any,
) -> GatewayConfig:
    base = sim_config(sim, db)
    providers = [p.model_dump(exclude_none=True) for p in base.providers]
    providers[0]["api_base"] = f"{sim}/{REFERENCE_UPSTREAM}/v1"  # gpt-4o-mini's provider
    return sim_config(
        sim,
        db,
        providers=providers,
        routes=[
            {
                "name": "auto",
                "policy": "ordered",
                "candidates": ["llama-3.1-8b", "gpt-4o-mini"],
                "shadow": {"sample_rate": 1.0, "reference": "gpt-4o-mini", **shadow},
            }
        ],
        tasks=[{"name": "tickets", "compare": "label", "judge": judge}],
        **({"auth": auth} if auth else {}),
    )


def ask(
    gw: ServerThread,
    i: int = 0,
    *,
    stream: bool = False,
    task: str | None = "tickets",
    key: str = "sk-client",
) -> str:
    """One request on the route; its request id."""
    headers = {"x-gateway-task": task} if task else {}
    messages: Any = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"My invoice {i} is wrong"},
    ]
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    if stream:
        with c.chat.completions.with_streaming_response.create(
            model="auto", messages=messages, stream=True, extra_headers=headers
        ) as r:
            for _ in r.iter_lines():
                pass
            return r.headers["x-request-id"]
    raw = c.chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_headers=headers
    )
    return raw.headers["x-request-id"]


def pairs(url: str, **where: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = create_engine(url)
        q = select(quality_pairs_table)
        for k, v in where.items():
            q = q.where(quality_pairs_table.c[k] == v)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(q)).all()
                return [dict(r._mapping) for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def wait_pairs(url: str, n: int, timeout: float = 15.0, **where: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = pairs(url, **where)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def metric(gw: ServerThread, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _state(server: ServerThread) -> AppState:
    """The gateway's AppState, found under its middleware (auth, request context)."""
    app: Any = server.config.app
    while not isinstance(getattr(app, "state", None), AppState):
        app = app.app
    return app.state  # type: ignore[no-any-return]


def received(sim: ServerThread, upstream: str) -> int:
    ups = httpx.get(f"{sim.url}/sim/stats").json()["upstreams"]
    return int(ups.get(upstream, {}).get("requests", {}).get("chat", 0))


@pytest.mark.parametrize("stream", [False, True])
def test_shadow_rows_are_linked_priced_and_compared(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory, stream: bool
) -> None:
    gw = gateway_factory(quality_config(sim.url, db_url))
    rid = ask(gw, stream=stream)
    shadow = wait_rows(db_url, 1, shadow_of=rid)
    assert len(shadow) == 1, "no shadow row"
    s = shadow[0]
    primary = fetch_rows(db_url, id=rid)[0]
    assert primary["shadow"] is False and primary["shadow_of"] is None
    assert primary["upstream_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert s["shadow"] is True and s["requested_model"] == "gpt-4o-mini"
    assert s["provider"] == "openai" and s["stream"] is False and s["status_code"] == 200
    assert s["team"] == "evidence" and s["api_key_id"] is None
    assert s["cost_usd"] > 0 and s["prompt_tokens"] > 0
    [pair] = wait_pairs(db_url, 1, request_id=rid)
    assert pair["request_id"] == rid and pair["shadow_request_id"] == s["id"] == pair["id"]
    assert (pair["task"], pair["model"], pair["reference"]) == (
        "tickets",
        "llama-3.1-8b",
        "gpt-4o-mini",
    )
    assert pair["comparator"] == "label" and pair["passed"] in (True, False)
    assert pair["reference_cost_usd"] == s["cost_usd"]
    assert pair["model_cost_usd"] == primary["cost_usd"]
    assert pair["model_sample"] and pair["reference_sample"]


def test_sampling_rate_is_within_binomial_bounds(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    n, p = 150, 0.3
    gw = gateway_factory(quality_config(sim.url, sqlite_url, sample_rate=p, max_concurrency=64))
    for i in range(n):
        ask(gw, i)
    wait_rows(sqlite_url, n, shadow=False)
    time.sleep(0.5)  # the last shadow calls finish
    shadows = wait_rows(sqlite_url, 1, shadow=True)
    sd = (n * p * (1 - p)) ** 0.5  # 5.6
    assert abs(len(shadows) - n * p) < 4 * sd, len(shadows)
    assert metric(gw, "gateway_shadow_samples_total", outcome="compared") == len(shadows)


def _timed_stream(url: str, body: dict[str, Any]) -> tuple[float, float]:
    """(time to the first content event, time to the stream's end) as the client sees them."""
    start = time.perf_counter()
    ttft = None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10) as r:
        for line in r.iter_lines():
            if ttft is None and '"content":"' in line:
                ttft = time.perf_counter() - start
    end = time.perf_counter() - start
    assert ttft is not None
    return ttft, end


def test_a_slow_reference_never_delays_the_primary(
    sim: ServerThread, sqlite_url: str, tmp_path: Any, gateway_factory: GatewayFactory
) -> None:
    shadowed = gateway_factory(quality_config(sim.url, sqlite_url, max_concurrency=2))
    plain_db = f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}"
    from gateway.ledger.migrate import upgrade

    upgrade(plain_db)
    plain = gateway_factory(
        sim_config(
            sim.url,
            plain_db,
            routes=[{"name": "auto", "policy": "ordered", "candidates": ["llama-3.1-8b"]}],
        )
    )
    # every call to the reference (its own simulator upstream) hangs 2 s
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": REFERENCE_UPSTREAM, "kind": "timeout", "delay_s": 2},
    ).raise_for_status()
    body = {
        "model": "auto",
        "stream": True,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "x"}],
    }
    n = 12
    with_shadow: list[tuple[float, float]] = []
    without: list[tuple[float, float]] = []
    began = time.monotonic()
    for _ in range(n):  # interleaved, so both see the same machine load
        with_shadow.append(_timed_stream(shadowed.url, body))
        without.append(_timed_stream(plain.url, body))
    ttft_s = statistics.median(t for t, _ in with_shadow)
    ttft_p = statistics.median(t for t, _ in without)
    end_s = statistics.median(e for _, e in with_shadow)
    end_p = statistics.median(e for _, e in without)
    print(
        f"median TTFT {ttft_s * 1000:.1f} ms with shadowing vs {ttft_p * 1000:.1f} ms without; "
        f"median latency {end_s * 1000:.1f} vs {end_p * 1000:.1f} ms (n={n} each)"
    )
    # within noise: a shadow call on the path would add its 2 s to every figure
    assert ttft_s < ttft_p * 1.5 + 0.05, (ttft_s, ttft_p)
    assert end_s < end_p * 1.5 + 0.05, (end_s, end_p)
    assert max(e for _, e in with_shadow) < 1.0
    # ... while shadow calls did go out: two at a time, the rest dropped and counted
    deadline = time.monotonic() + 10
    while received(sim, REFERENCE_UPSTREAM) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    ran = time.monotonic() - began
    wait_rows(sqlite_url, 1, shadow=True, timeout=10)
    time.sleep(2.5)
    dropped = metric(shadowed, "gateway_shadow_samples_total", outcome="dropped_concurrency")
    compared = metric(shadowed, "gateway_shadow_samples_total", outcome="compared")
    assert compared + dropped == n, (compared, dropped)
    # two at a time, each taking 2 s: at most two per 2 s of the run (plus the last two)
    assert 2 <= compared <= 2 * (ran // 2 + 1) and dropped >= 1, (compared, dropped, ran)
    assert received(sim, REFERENCE_UPSTREAM) == compared


def test_no_shadow_call_once_the_daily_cap_is_reached(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    cap = 0.00004  # about two or three shadow calls at gpt-4o-mini's price
    gw = gateway_factory(quality_config(sim.url, sqlite_url, max_usd_per_day=cap))
    n = 8
    for i in range(n):
        ask(gw, i)
        time.sleep(0.15)  # the shadow call (if any) is done before the next request
    time.sleep(0.3)
    shadows = fetch_rows(sqlite_url, shadow=True)
    assert 1 <= len(shadows) < n
    assert sum(float(r["cost_usd"]) for r in shadows) <= cap
    assert received(sim, REFERENCE_UPSTREAM) == len(shadows)
    first_drop = min(r["created_at"] for r in shadows)
    del first_drop
    dropped = metric(gw, "gateway_shadow_samples_total", outcome="dropped_cap")
    assert dropped == n - len(shadows)
    # once refused, refused for the rest of the day: the calls made were the first ones
    primaries = sorted(fetch_rows(sqlite_url, shadow=False), key=lambda r: r["id"])
    shadowed = {r["shadow_of"] for r in shadows}
    assert shadowed == {r["id"] for r in primaries[: len(shadows)]}
    # a restarted gateway counts today's spend from the ledger: still nothing
    gw.stop()
    again = gateway_factory(quality_config(sim.url, sqlite_url, max_usd_per_day=cap))
    for i in range(3):
        ask(again, i)
    time.sleep(0.3)
    assert len(fetch_rows(sqlite_url, shadow=True)) == len(shadows)
    assert metric(again, "gateway_shadow_samples_total", outcome="dropped_cap") == 3


def test_shadow_calls_skip_the_keys_rate_limit_and_the_report_shows_the_evidence(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, tmp_path: Any
) -> None:
    gw = gateway_factory(quality_config(sim.url, sqlite_url, auth={"master_key": MASTER}))
    admin = AdminClient(gw.url)
    admin.team("support")
    key = admin.key("support", rpm=4)["key"]
    # four requests in the minute: the key's whole limit; their four shadow calls are not
    # charged to it (were they, the third request would be refused)
    ids = []
    for i in range(4):
        ids.append(ask(gw, i, key=key))
        time.sleep(0.1)
    with pytest.raises(openai.RateLimitError):
        ask(gw, 9, key=key)
    got = wait_pairs(sqlite_url, 4)
    assert sorted(p["request_id"] for p in got) == sorted(ids)

    as_key = httpx.get(f"{gw.url}/admin/quality", headers={"authorization": f"Bearer {key}"})
    assert as_key.status_code == 403
    assert httpx.get(f"{gw.url}/admin/quality").status_code == 401
    r = httpx.get(f"{gw.url}/admin/quality", headers=MASTER_HEADERS)
    assert r.status_code == 200, r.text
    [row] = r.json()["data"]
    passes = sum(bool(p["passed"]) for p in got)
    assert (row["task"], row["model"], row["reference"]) == (
        "tickets",
        "llama-3.1-8b",
        "gpt-4o-mini",
    )
    assert row["samples"] == 4 and row["comparator"] == "label" and row["interval"] == "wilson"
    assert row["agreement"] == passes / 4
    assert (row["low"], row["high"]) == pytest.approx(wilson(passes, 4))
    model_cost = sum(p["model_cost_usd"] for p in got) / 4
    ref_cost = sum(p["reference_cost_usd"] for p in got) / 4
    assert Decimal(row["model_usd_per_request"]) == model_cost
    assert Decimal(row["saved_usd_per_request"]) == ref_cost - model_cost > 0
    bad = httpx.get(f"{gw.url}/admin/quality?since=yesterday", headers=MASTER_HEADERS)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"
    none = httpx.get(f"{gw.url}/admin/quality?task=other", headers=MASTER_HEADERS).json()
    assert none["data"] == []

    # the same from the command line, and the evidence back in memory after a restart
    gw.stop()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "database_url: " + sqlite_url + "\n"
        "providers: [{name: p, kind: openai, api_base: 'http://127.0.0.1:9/v1', api_key: x}]\n"
        "models: [{name: gpt-4o-mini, provider: p}]\n"
    )
    out = CliRunner().invoke(cli_app, ["quality", "-c", str(cfg), "--format", "csv"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("task,model,reference,comparator,samples,agreement,low,high")
    assert lines[1].startswith("tickets,llama-3.1-8b,gpt-4o-mini,label,4,")
    table = CliRunner().invoke(cli_app, ["quality", "-c", str(cfg), "--since", "2020-01-01"])
    print(table.output)
    assert "tickets" in table.output and "95% interval" in table.output
    later = CliRunner().invoke(cli_app, ["quality", "-c", str(cfg), "--since", "2999-01-01"])
    assert "no quality evidence yet" in later.output
    assert (
        CliRunner().invoke(cli_app, ["quality", "-c", str(cfg), "--format", "xml"]).exit_code == 2
    )
    again = gateway_factory(quality_config(sim.url, sqlite_url, auth={"master_key": MASTER}))
    evidence = _state(again).evidence
    assert evidence is not None
    loaded = evidence.agreement("tickets", "llama-3.1-8b")
    assert loaded is not None and loaded.n == 4 and loaded.mean == passes / 4


def test_a_judge_is_one_more_shadow_call(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(quality_config(sim.url, sqlite_url, judge="gpt-4o-mini"))
    rid = ask(gw)
    rows = wait_rows(sqlite_url, 2, shadow_of=rid)
    assert len(rows) == 2 and all(r["shadow"] and r["cost_usd"] > 0 for r in rows)
    assert received(sim, REFERENCE_UPSTREAM) == 2  # the reference, then the judge
    time.sleep(0.2)
    # the simulator's judge answers with neither word: no pair is made from a guess
    done = metric(gw, "gateway_shadow_samples_total", outcome="compared")
    failed = metric(gw, "gateway_shadow_samples_total", outcome="failed")
    assert done + failed == 1
    assert len(pairs(sqlite_url, request_id=rid)) == done
    spent = _state(gw).shadow
    assert spent is not None
    assert spent.spend.spent_today("auto") == sum(r["cost_usd"] for r in rows)
