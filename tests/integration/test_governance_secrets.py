"""No secret — provider key, master key, virtual key, the key-hashing secret — appears in a log
line, an error body, /metrics, a ledger row or an admin answer, on any path: success,
streaming, upstream 401 (whose message echoes the provider key, as OpenAI's does), upstream
500, upstream timeout, budget and rate-limit refusals, bad credentials, admin changes."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.conftest import REDIS_URL
from tests.governance_support import GatewayProcess
from tests.support import ServerThread, fetch_rows

PROVIDER_KEY = "sk-prov-DISTINCT-7f3a9c11e5"
MASTER_KEY = "sk-master-DISTINCT-91b2c4d8"
HASH_SECRET = "hash-secret-DISTINCT-55aa0e"
BAD_KEY = "sk-gw-" + "deadbeef" * 6  # well formed, unknown
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_no_secret_leaves_the_gateway_on_any_path(
    sim: ServerThread, pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    config = {
        "database_url": pg_url,
        "log_level": "debug",
        "ledger": {"flush_interval_ms": 20},
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": HASH_SECRET},
        "redis_url": REDIS_URL,
        "governance": {"redis_key_prefix": redis_prefix},
        "reliability": {"max_attempts": 2, "backoff_s": 0},
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "api_base": f"{sim.url}/instant/v1",
                "api_key": PROVIDER_KEY,
                "timeout_s": 1,
            }
        ],
        "models": [{"name": "gpt-4o-mini", "provider": "openai"}],
    }
    gw = GatewayProcess(config, tmp_path, "gateway").wait_ready()
    seen: list[str] = []  # every answer a client got
    try:
        master = httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER_KEY}"})
        team = f"t{uuid.uuid4().hex[:8]}"
        master.post("/admin/teams", json={"name": team})
        master.post("/admin/teams", json={"name": team + "-broke", "budget_usd_day": "0"})
        created = master.post("/admin/keys", json={"team": team, "rpm": 8}).json()
        broke = master.post("/admin/keys", json={"team": team + "-broke"}).json()
        secrets = [PROVIDER_KEY, MASTER_KEY, HASH_SECRET, BAD_KEY, created["key"], broke["key"]]
        as_key = httpx.Client(
            base_url=gw.url, headers={"authorization": f"Bearer {created['key']}"}
        )

        def faults(*rules: dict[str, object]) -> None:
            httpx.post(f"{sim.url}/sim/faults", json=list(rules)).raise_for_status()

        def call(client: httpx.Client, path: str = "/v1/chat/completions", **body: object) -> int:
            r = client.post(path, json={**CHAT, **body})
            seen.append(r.text + str(r.headers))
            return r.status_code

        assert call(as_key) == 200
        assert call(as_key, stream=True) == 200
        assert call(master) == 200
        faults(
            {
                "upstream": "instant",
                "status": 401,
                "count": 1,  # not retried
                "message": f"Incorrect API key provided: {PROVIDER_KEY}.",
            }
        )
        assert call(as_key) == 401
        faults({"upstream": "instant", "status": 500, "count": 1})
        assert call(as_key) == 500
        faults({"upstream": "instant", "kind": "timeout", "delay_s": 3, "count": 1})
        assert call(as_key) == 504
        assert (
            call(httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {broke['key']}"}))
            == 429
        )
        assert (
            call(
                httpx.Client(base_url=gw.url, headers={"x-api-key": created["key"]}),
                "/v1/messages",
                max_tokens=5,
            )
            == 200
        )
        for _ in range(2):  # 6 so far
            call(as_key)
        assert call(as_key) == 429  # its rpm of 8 is spent
        assert (
            call(httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {BAD_KEY}"}))
            == 401
        )
        seen.append(master.get("/admin/keys").text)
        seen.append(master.get(f"/admin/keys/{created['id']}").text)
        seen.append(master.patch(f"/admin/keys/{created['id']}", json={"rpm": 9}).text)
        seen.append(master.delete(f"/admin/keys/{created['id']}").text)
        seen.append(as_key.get("/admin/keys").text)
        seen.append(httpx.get(f"{gw.url}/metrics").text)
        seen.append(httpx.get(f"{gw.url}/health/ready").text)
    finally:
        output = gw.stop()
    rows = fetch_rows(pg_url)  # every row of the session's database: ours and the others'
    assert len([r for r in rows if r["api_key_id"] == created["id"]]) == 9
    assert len([r for r in rows if r["api_key_id"] == broke["id"]]) == 1
    assert "upstream_error" in output or "401" in output  # the log did record the failures
    places = {"gateway output (logs, access log)": output, "ledger": repr(rows)}
    places.update({f"answer {i}": text for i, text in enumerate(seen)})
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:8]}…) in the {where}"
        assert created["key"][6:] not in text and broke["key"][6:] not in text
