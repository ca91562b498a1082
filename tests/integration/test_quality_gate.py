"""The quality gate end to end: the real gateway, shadowing on, and the simulator's answer
quality changed live. The cheap local model explores a task, earns the route when its shadow
pairs agree, loses it when its answers go bad, and earns it back — as the challenger of the
requests the reference serves — when they are good again. Every decision says why."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.config import GatewayConfig, parse_config
from gateway.simulator.app import create_app as create_simulator
from gateway.simulator.profiles import PROFILES
from gateway.simulator.quality import DEFAULT_QUALITY, Quality, SimTask
from tests.conftest import GatewayFactory
from tests.support import ServerThread, wait_rows

SYSTEM = "Label the support ticket: billing, refund, delivery, account, technical or other."
DIGEST = hashlib.sha256(SYSTEM.encode()).hexdigest()
LOCAL = "llama-3.1-8b-h100"  # the simulator profile behind the local model
MIN_SAMPLES = 20
INSTANT = {
    name: replace(
        p,
        ttft_base_s=0.0,
        prefill_s_per_token=0.0,
        ttft_s_per_running=0.0,
        tpot_base_s=0.0,
        decode_ceiling_tok_s=0.0,
    )
    for name, p in PROFILES.items()
}


# The task's name is this test's own: the PostgreSQL ledger (and its stored pairs, which a
# gateway loads as evidence at start) is shared by the session's tests.
@pytest.fixture()
def quality_sim() -> Iterator[ServerThread]:
    tickets = SimTask("ticket-triage", "label", system_prompt_sha256=(DIGEST,))
    table = DEFAULT_QUALITY.merged(
        Quality({"ticket-triage": tickets}, {LOCAL: {"ticket-triage": 1.0}})
    )
    server = ServerThread(create_simulator("instant", profiles=INSTANT, quality=table)).start()
    yield server
    server.stop()


def gate_config(sim: str, db: str) -> GatewayConfig:
    raw: dict[str, Any] = {
        "database_url": db,
        "ledger": {"flush_interval_ms": 20},
        "providers": [
            {
                "name": "local-llama",
                "kind": "vllm",
                "api_base": f"{sim}/{LOCAL}/v1",
                "gpu": {"name": "H100", "count": 1, "hourly_usd": 2.49},
            },
            {"name": "openai", "kind": "openai", "api_base": f"{sim}/gpt-4o-mini/v1"},
        ],
        "models": [
            {"name": "llama-3.1-8b", "provider": "local-llama"},
            {
                "name": "gpt-4o-mini",
                "provider": "openai",
                "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
            },
        ],
        # named by its system prompt's hash: no header, as most clients send
        "tasks": [
            {"name": "ticket-triage", "match": {"system_prompt_sha256": DIGEST}, "compare": "label"}
        ],
        "routes": [
            {
                "name": "auto",
                "policy": "local-first",
                "candidates": ["llama-3.1-8b"],
                "shadow": {"reference": "gpt-4o-mini", "sample_rate": 1.0, "max_concurrency": 8},
                "quality": {"min_agreement": 0.8, "min_samples": MIN_SAMPLES},
            }
        ],
    }
    return parse_config(raw, source="test", environ={})


BODY = {"model": "auto", "messages": [{"role": "system", "content": SYSTEM}]}


def ask(gw: ServerThread, i: int) -> tuple[str, str]:
    """One request; (the model that served it, its request id)."""
    messages = [*BODY["messages"], {"role": "user", "content": f"ticket {i}: where is my parcel"}]
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={**BODY, "messages": messages})
    assert r.status_code == 200, r.text
    return r.headers["x-gateway-model"], r.headers["x-request-id"]


def verdict(gw: ServerThread) -> dict[str, Any]:
    messages = [*BODY["messages"], {"role": "user", "content": "?"}]
    out = httpx.post(f"{gw.url}/v1/route/explain", json={**BODY, "messages": messages}).json()
    assert out["task"] == "ticket-triage"
    by_model = {c["model"]: c for c in out["candidates"]}
    q: dict[str, Any] = by_model["llama-3.1-8b"]["quality"]
    return q


def wait_n(gw: ServerThread, n: int) -> dict[str, Any]:
    """The local model's verdict once its n-th shadow pair is in."""
    deadline = time.monotonic() + 15
    while True:
        q = verdict(gw)
        if q["n"] >= n or time.monotonic() > deadline:
            assert q["n"] == n, q
            return q
        time.sleep(0.02)


def set_rate(sim: ServerThread, rate: float) -> None:
    r = httpx.post(f"{sim.url}/sim/quality", json={"agreement": {LOCAL: {"ticket-triage": rate}}})
    assert r.status_code == 200


def test_the_gate_opens_closes_and_reopens_on_shadow_evidence(
    quality_sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gate_config(quality_sim.url, db_url))
    served: list[str] = []
    ids: list[str] = []
    # explore: the local model serves while the pairs come in (all agree: rate 1.0)
    for i in range(MIN_SAMPLES):
        model, rid = ask(gw, i)
        served.append(model)
        ids.append(rid)
        q = wait_n(gw, i + 1)
    assert served == ["llama-3.1-8b"] * MIN_SAMPLES
    assert q["proven"] and q["serves"] and q["low"] >= 0.8  # 20/20: Wilson low 0.839
    # its answers go bad: the first disagreement after 20 takes the bound under the bar
    set_rate(quality_sim, 0.0)
    model, _ = ask(gw, 100)
    assert model == "llama-3.1-8b"
    q = wait_n(gw, MIN_SAMPLES + 1)
    assert q["proven"] and not q["serves"] and q["low"] < 0.8
    # the reference serves; llama answers each request again in the shadow, as the challenger
    set_rate(quality_sim, 1.0)
    back = None
    for i in range(200, 240):
        model, rid = ask(gw, i)
        if model == "llama-3.1-8b":
            back = rid
            break
        assert model == "gpt-4o-mini"
        q = wait_n(gw, q["n"] + 1)
    assert back is not None, "the local model never earned the route back"
    assert q["serves"] and q["low"] >= 0.8 and q["n"] == 25  # 24/25: Wilson low 0.805

    # every request asked so far has its row (wait_rows alone returns at the first N of them)
    deadline = time.monotonic() + 10
    while True:
        rows = wait_rows(db_url, len(ids) + 30)
        reasons = {r["id"]: r["route_reason"] for r in rows}
        if back in reasons or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "quality: ticket-triage llama-3.1-8b exploring, n=0 < 20" in reasons[ids[0]]
    assert (
        "quality: ticket-triage llama-3.1-8b vs gpt-4o-mini agreement 0.960 [0.805, 0.993] n=25 ≥ 0.8"
        in reasons[back]
    )
    refused = [r for r in reasons.values() if "agreement 0.952 [0.773, 0.992] n=21 < 0.8" in r]
    assert refused and all("ineligible: llama-3.1-8b (quality:" in r for r in refused)
    shadows = [r for r in rows if r["shadow"]]
    assert shadows and all(r["shadow_of"] in reasons for r in shadows)
