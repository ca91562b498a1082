"""GET /admin/usage and /admin/gpu on a real gateway: the traffic it served shows up, JSON and
CSV agree, and the routes are guarded like the rest of /admin."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import httpx
import openai

from gateway.ledger.db import create_engine
from tests.conftest import GatewayFactory, sim_config
from tests.governance_support import MASTER, MASTER_HEADERS, AdminClient, gov_config
from tests.support import ServerThread

FINANCE = {"finance": {"reference_model": "gpt-4o-mini"}}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def wait_for_rows(url: str, n: int) -> None:
    import asyncio

    from sqlalchemy import func, select

    from gateway.ledger.tables import requests_table

    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return int(
                    (
                        await conn.execute(select(func.count()).select_from(requests_table))
                    ).scalar_one()
                )
        finally:
            await engine.dispose()

    deadline = time.monotonic() + 10
    while asyncio.run(count()) < n:
        assert time.monotonic() < deadline, "the ledger rows did not arrive"
        time.sleep(0.05)


def test_usage_shows_the_served_traffic_as_json_and_csv(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gov_config(sim.url, sqlite_url, **FINANCE))
    admin = AdminClient(gw.url)
    admin.team("search")
    key = admin.key("search")["key"]
    for api_key, model in ((key, "gpt-4o-mini"), (key, "llama-3.1-8b"), (MASTER, "gpt-4o-mini")):
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=api_key, max_retries=0)
        client.chat.completions.create(
            model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    wait_for_rows(sqlite_url, 3)
    params = {"since": today(), "group_by": "team,provider"}
    r = httpx.get(f"{gw.url}/admin/usage", params=params, headers=MASTER_HEADERS)
    assert r.status_code == 200, r.text
    rep = r.json()
    rows = {(x["team"], x["provider"]): x for x in rep["rows"]}
    assert set(rows) == {
        ("search", "openai"),
        ("search", "local-llama"),
        ("unattributed", "openai"),
    }
    local = rows[("search", "local-llama")]
    assert local["local"] is True and rows[("search", "openai")]["local"] is False
    # the self-hosted request, priced at gpt-4o-mini, cost more there than on the GPU
    assert float(local["reference_cost_usd"]) > float(local["cost_usd"]) > 0
    assert rep["totals"]["requests"] == 3 and rep["totals"]["prompt_tokens"] > 0

    as_csv = httpx.get(
        f"{gw.url}/admin/usage", params=params, headers={**MASTER_HEADERS, "accept": "text/csv"}
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert lines[-1]["team"] == "total"
    assert lines[-1]["cost_usd"] == rep["totals"]["cost_usd"]
    by_key = {(x["team"], x["provider"]): x for x in lines[:-1]}
    assert by_key[("search", "local-llama")]["saving_usd"] == local["saving_usd"]
    assert by_key[("search", "local-llama")]["local"] == "yes"

    g = httpx.get(f"{gw.url}/admin/gpu", params={"since": today()}, headers=MASTER_HEADERS)
    assert g.status_code == 200, g.text
    (pool,) = g.json()["providers"]
    assert (
        pool["provider"] == "local-llama"
        and pool["tokens"] == local["prompt_tokens"] + local["completion_tokens"]
    )
    assert [a["model"] for a in g.json()["apis"]] == ["gpt-4o-mini", "text-embedding-3-small"]


def test_the_reports_need_the_master_key(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gov_config(sim.url, sqlite_url))
    admin = AdminClient(gw.url)
    admin.team("t")
    key = admin.key("t")["key"]
    for path in ("/admin/usage", "/admin/gpu"):
        url = f"{gw.url}{path}?since={today()}"
        assert httpx.get(url).status_code == 401
        as_key = httpx.get(url, headers={"authorization": f"Bearer {key}"})
        assert as_key.status_code == 403
        assert "master key" in as_key.json()["error"]["message"]
        assert httpx.get(url, headers=MASTER_HEADERS).status_code == 200


def test_bad_parameters_are_a_400_naming_them(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, sqlite_url))  # auth off: the reports are open
    for query, param in (
        ("", "since"),
        ("since=last-week", "since"),
        (f"since={today()}&group_by=day,colour", "group_by"),
        (f"since={today()}&tz=Nowhere/Else", "tz"),
        (f"since={today()}&format=xml", "format"),
    ):
        r = httpx.get(f"{gw.url}/admin/usage?{query}")
        assert r.status_code == 400, query
        assert r.json()["error"]["param"] == param
    ok = httpx.get(f"{gw.url}/admin/usage?since={today()}&format=csv")
    assert ok.status_code == 200 and ok.text.startswith("requests,errors,")
