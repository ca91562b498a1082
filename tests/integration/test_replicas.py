"""Two gateway processes sharing the machine's PostgreSQL (keys, teams, the ledger) and Redis
(counters, reservations, revocations) hold limits and budgets exactly as one would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import REDIS_URL
from tests.governance_support import MASTER, AdminClient, GatewayProcess
from tests.support import ServerThread, wait_rows

PRICE_PER_TOKEN = Decimal("0.001")  # 1,000 USD per 1M tokens
PRICEY = {
    "name": "pricey",
    "provider": "openai",
    "upstream_model": "gpt-4o-mini",
    "price": {"input_per_mtok": 1000, "output_per_mtok": 1000},
}


def replica_config(
    sim: ServerThread, pg_url: str, prefix: str | None, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database_url": pg_url,
        "ledger": {"flush_interval_ms": 20},
        "auth": {"master_key": MASTER, "refresh_interval_s": 1.0},
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "api_base": f"{sim.url}/instant/v1",
                "api_key": "sk-test-secret-123",
                "timeout_s": 5,
            }
        ],
        "models": [{"name": "gpt-4o-mini", "provider": "openai"}, PRICEY],
        **extra,
    }
    if prefix is not None:
        config["redis_url"] = REDIS_URL
        config["governance"] = {"redis_key_prefix": prefix}
    return config


def start_two(config: dict[str, Any], tmp_path: Path) -> list[GatewayProcess]:
    procs = [GatewayProcess(config, tmp_path, f"replica{i}") for i in (1, 2)]
    try:
        return [p.wait_ready() for p in procs]
    except Exception:
        for p in procs:
            p.stop()
        raise


@pytest.fixture(scope="module")
def replicas(
    simulator: ServerThread, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[GatewayProcess]]:
    """One pair for the module (~15 s to start on a busy 2-core machine); each test makes
    teams and keys of its own, and the simulator is not given faults here."""
    prefix = f"gwtest:{uuid.uuid4().hex[:10]}:"
    workdir = tmp_path_factory.mktemp("replicas")
    procs = start_two(replica_config(simulator, pg_url, prefix), workdir)
    yield procs
    for p in procs:
        p.stop()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*", count=500):
        client.delete(key)
    client.close()


def chat(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def fire(
    urls: list[str], key: str, n: int, concurrency: int, body: dict[str, Any]
) -> list[tuple[str, httpx.Response]]:
    """`n` requests, `concurrency` at a time, alternating between the replicas."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as c:

        async def one(i: int) -> tuple[str, httpx.Response]:
            url = urls[i % len(urls)]
            async with sem:
                return url, await c.post(f"{url}/v1/chat/completions", json=body, headers=headers)

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_a_60_rpm_key_admits_60_requests_across_both_replicas(
    replicas: list[GatewayProcess],
) -> None:
    admin = AdminClient(replicas[0].url)
    team = f"t{uuid.uuid4().hex[:8]}"
    admin.team(team)
    key = admin.key(team, rpm=60)
    started = time.monotonic()
    results = asyncio.run(fire([p.url for p in replicas], key["key"], 200, 24, chat()))
    assert time.monotonic() - started < 50  # all inside one minute of the first request
    ok = [url for url, r in results if r.status_code == 200]
    limited = [r for _, r in results if r.status_code == 429]
    assert 59 <= len(ok) <= 61, Counter(r.status_code for _, r in results)
    assert len(ok) + len(limited) == 200
    assert set(ok) == {p.url for p in replicas}  # both served part of the 60
    assert {url for url, r in results if r.status_code == 429} == {p.url for p in replicas}
    for r in limited:
        assert r.json()["error"]["type"] == "requests" and int(r.headers["retry-after"]) >= 1


def test_a_team_is_stopped_at_its_budget_on_both_replicas(
    replicas: list[GatewayProcess], pg_url: str
) -> None:
    admin = AdminClient(replicas[1].url)
    team = f"t{uuid.uuid4().hex[:8]}"
    budget = Decimal("0.3")
    admin.team(team, budget_usd_day=str(budget))
    keys = [admin.key(team)["key"], admin.key(team)["key"]]  # two keys of one team
    urls = [p.url for p in replicas]
    body = chat("pricey", max_tokens=8)
    statuses: Counter[int] = Counter()
    for _ in range(6):  # concurrent waves until the budget is gone
        for key in keys:
            statuses.update(r.status_code for _, r in asyncio.run(fire(urls, key, 16, 16, body)))
        time.sleep(0.1)  # the ledger writers settle what finished
    assert statuses[200] > 10 and statuses[429] > 0, statuses
    for url in urls:  # now refused on both, whichever key
        for key in keys:
            r = httpx.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key}"},
            )
            assert r.status_code == 429 and r.json()["error"]["type"] == "budget_exceeded"
    served = wait_rows(pg_url, statuses[200], timeout=15, team=team, status_code=200)
    assert len(served) == statuses[200]
    spent = sum((r["cost_usd"] for r in served), Decimal(0))
    # one request's maximum cost: its prompt (as the upstream counted it) and 8 output tokens
    max_cost = max((r["prompt_tokens"] + 8) * PRICE_PER_TOKEN for r in served)
    assert spent <= budget + max_cost, (spent, budget)
    assert spent >= budget - 2 * max_cost, (spent, budget)  # and it was not refused early


def revoked_within(urls: list[str], secret: str, since: float, limit_s: float) -> list[float]:
    """Seconds from `since` until each replica refused the key (polling)."""
    headers = {"authorization": f"Bearer {secret}"}
    took = []
    for url in urls:
        while True:
            r = httpx.post(f"{url}/v1/chat/completions", json=chat(), headers=headers)
            if r.status_code == 401:
                took.append(time.monotonic() - since)
                break
            assert r.status_code == 200
            assert time.monotonic() - since < limit_s + 2, f"{url} still accepts the key"
            time.sleep(0.02)
    return took


def use_on_both(urls: list[str], secret: str) -> None:
    for url in urls:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json=chat(),
            headers={"authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 200, r.text


def test_a_revoked_key_is_refused_by_both_replicas_within_a_second(
    replicas: list[GatewayProcess],
) -> None:
    admin = AdminClient(replicas[0].url)
    team = f"t{uuid.uuid4().hex[:8]}"
    admin.team(team)
    urls = [p.url for p in replicas]
    by_api, by_cli = admin.key(team), admin.key(team)
    use_on_both(urls, by_api["key"])
    use_on_both(urls, by_cli["key"])
    t0 = time.monotonic()
    admin.revoke(by_api["id"])  # through replica 1's admin API
    assert max(revoked_within(urls, by_api["key"], t0, 1.0)) <= 1.0
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "keys",
            "revoke",
            by_cli["id"],
            "--config",
            str(replicas[0].config_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    t0 = time.monotonic()
    assert cli.returncode == 0, cli.stderr
    assert max(revoked_within(urls, by_cli["key"], t0, 1.0)) <= 1.0


def test_without_redis_revocations_still_reach_both_within_a_second(
    sim: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    config = replica_config(sim, pg_url, None)
    config["auth"]["refresh_interval_s"] = 0.5  # the database poll is the only channel
    procs = start_two(config, tmp_path)
    try:
        admin = AdminClient(procs[0].url)
        team = f"t{uuid.uuid4().hex[:8]}"
        admin.team(team)
        key = admin.key(team)
        urls = [p.url for p in procs]
        use_on_both(urls, key["key"])  # a key made on replica 1 works on replica 2 at once
        t0 = time.monotonic()
        admin.revoke(key["id"])
        assert max(revoked_within(urls, key["key"], t0, 1.0)) <= 1.0
    finally:
        for p in procs:
            p.stop()
