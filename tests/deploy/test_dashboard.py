"""The Grafana dashboard queries only metrics that exist.

A real gateway (on the session's simulator) serves JSON and streamed requests and one failed
upstream attempt, so every labelled series has a sample; then every `gateway_*` name in the
dashboard's queries must be a sample in the gateway's /metrics, and every `vllm:*` name one in
the simulator's /metrics (which uses vLLM's own names). Also: the dashboard's datasource is the
one compose provisions, and every `$variable` a query uses is defined.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory, sim_config
from tests.support import ServerThread, wait_rows

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "gateway.json"
METRIC = re.compile(r"\b(gateway_[a-z0-9_]+|vllm:[a-z0-9_:]+)")
BUILTIN_VARIABLES = {"__rate_interval", "__range", "__interval"}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def sample_names(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def drive_traffic(gateway: ServerThread, sim: ServerThread, db_url: str) -> None:
    client = OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    msgs: Any = [{"role": "user", "content": "dashboard"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    list(client.chat.completions.create(model="llama-3.1-8b", messages=msgs, stream=True))
    # one failed upstream attempt, so gateway_upstream_errors_total has a series
    httpx.post(f"{sim.url}/sim/faults", json={"upstream": "instant", "status": 500, "count": 1})
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs}
    )
    assert r.status_code == 500
    # one request on a shadowed route: its shadow call feeds the quality evidence series
    client.chat.completions.create(model="auto", messages=msgs)
    assert len(wait_rows(db_url, 5)) == 5


def test_every_metric_the_dashboard_queries_exists(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    shadowed = {
        "name": "auto",
        "candidates": ["llama-3.1-8b"],
        "shadow": {"sample_rate": 1.0, "reference": "gpt-4o-mini"},
    }
    gateway = gateway_factory(sim_config(sim.url, sqlite_url, routes=[shadowed]))
    drive_traffic(gateway, sim, sqlite_url)

    named = {m for q in queries(dashboard()) for m in METRIC.findall(q)}
    ours = {m for m in named if m.startswith("gateway_")}
    vllm = named - ours
    # the dashboard covers each of the gateway's metrics families and vLLM's capacity
    assert {
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "gateway_time_to_first_token_seconds_bucket",
        "gateway_tokens_total",
        "gateway_cost_usd_total",
        "gateway_upstream_errors_total",
        "gateway_ledger_backlog_rows",
        "gateway_ledger_rows_written_total",
        "gateway_ledger_write_errors_total",
        "gateway_shadow_samples_total",
        "gateway_shadow_cost_usd_total",
    } <= ours
    assert {"vllm:num_requests_running", "vllm:num_requests_waiting"} <= vllm
    assert ours - sample_names(gateway.url) == set()
    assert vllm - sample_names(sim.url) == set()


def test_dashboard_uses_the_provisioned_datasource_and_defined_variables() -> None:
    dash = dashboard()
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    uids = {d["uid"] for d in provisioned["datasources"]}
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] in uids, p["title"]
        assert all(t["datasource"]["uid"] in uids for t in p["targets"]), p["title"]
    defined = {v["name"] for v in dash["templating"]["list"]} | BUILTIN_VARIABLES
    used = {v for q in queries(dash) for v in re.findall(r"\$(\w+)", q)}
    assert used <= defined, used - defined
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    provider_cfg = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "gateway.yaml").read_text()
    )
    assert provider_cfg["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
