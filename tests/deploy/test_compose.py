"""deploy/compose.yaml and compose.sim.yaml: valid Compose, and nothing they name is missing.

Validated against the Compose specification's JSON schema (compose-spec/compose-spec's
`compose-spec.json`, as check-jsonschema vendors it with its Apache-2.0 licence), then read as
Compose reads them (tests/deploy/compose_model.py) to check that every variable is documented
in deploy/.env.example, every named volume and config is declared, every file they mount
exists, every image has a pinned tag or is built here, every dependency is a service, the
gateway's config loads with the environment the service gives it, Prometheus scrapes services
that exist, and vLLM is served as deploy/gpu/run.sh served it for the benchmark.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.config import load_config
from gateway.pricing.table import build_price_table
from gateway.server import CUT_GRACE_S
from tests.deploy import compose_model as cm
from tests.deploy.vllm_flags import parse_flags, run_sh_flags

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
FILES = ("compose.yaml", "compose.sim.yaml")
GATEWAY_CONFIG_IN_CONTAINER = "/etc/gateway/gateway.yaml"


def schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    data: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return data


def documented() -> dict[str, str]:
    """deploy/.env.example's variables, the commented-out optional ones included."""
    out = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        line = line.lstrip("# ").split("#", 1)[0].strip()
        if "=" in line and line.split("=", 1)[0].isupper():
            k, v = line.split("=", 1)
            out[k] = v
    return out


def example_env() -> dict[str, str]:
    """What a filled-in deploy/.env would hold: a value for every variable."""
    return {k: v or f"example-{k.lower()}" for k, v in documented().items()}


def model(name: str) -> dict[str, Any]:
    return cm.load(DEPLOY / name, example_env())


@pytest.mark.parametrize("name", FILES)
def test_valid_against_the_compose_specification(name: str) -> None:
    raw = yaml.safe_load((DEPLOY / name).read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(raw), key=str)
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    # resolved (extends, interpolation), it is still valid
    jsonschema.validate(model(name), schema(), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("name", FILES)
def test_every_variable_is_documented_and_required_ones_are_enforced(name: str) -> None:
    used = cm.variables((DEPLOY / name).read_text())
    if name == "compose.sim.yaml":  # what it extends is interpolated too
        used |= cm.variables((DEPLOY / "compose.yaml").read_text())
    assert set(used) <= set(documented()), set(used) - set(documented())
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        cm.load(DEPLOY / name, {})  # compose refuses to start without the passwords


@pytest.mark.parametrize("name", FILES)
def test_every_reference_is_defined(name: str) -> None:
    m = model(name)
    services: dict[str, Any] = m["services"]
    volumes, configs = set(m.get("volumes") or {}), m.get("configs") or {}
    aliases = {
        a
        for s in services.values()
        for net in (s.get("networks") or {}).values()
        for a in (net or {}).get("aliases", [])
    }
    for sname, s in services.items():
        for v in cm.named_volumes(s):
            assert v in volumes, f"{sname}: volume {v} is not declared"
        for source in cm.bind_sources(s):
            assert (DEPLOY / source).exists(), f"{sname}: {source} does not exist"
        for c in s.get("configs", []):
            assert c["source"] in configs, f"{sname}: config {c['source']} is not declared"
        for dep in cm.depends_on(s):
            assert dep in services, f"{sname}: depends on unknown service {dep}"
        if "build" in s:
            context = DEPLOY / s["build"]["context"]
            assert (context / s["build"].get("dockerfile", "Dockerfile")).is_file()
        ref = s["image"]
        repo, _, tag = ref.rpartition(":")
        assert repo and "/" not in tag and tag not in ("", "latest"), f"{sname}: {ref}"
    for cname, c in configs.items():
        assert (DEPLOY / c["file"]).is_file(), f"config {cname}: {c['file']} does not exist"
    # Prometheus scrapes names that resolve on the compose network
    prom = yaml.safe_load((DEPLOY / configs["prometheus_config"]["file"]).read_text())
    for job in prom["scrape_configs"]:
        names = [n for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        names += [t.split(":")[0] for sc in job.get("static_configs", []) for t in sc["targets"]]
        assert names and set(names) <= set(services) | aliases, (job["job_name"], names)


@pytest.mark.parametrize("name", FILES)
def test_the_gateway_runs_migrated_replicas_on_its_own_config(name: str) -> None:
    m = model(name)
    services = m["services"]
    gw, migrate = services["gateway"], services["migrate"]
    assert gw["deploy"]["replicas"] == 2
    first, last = gw["ports"][0].split(":")[0].split("-")
    assert int(last) - int(first) + 1 == gw["deploy"]["replicas"]  # a host port per replica
    assert migrate["command"] == ["db", "upgrade"] and migrate["image"] == gw["image"]
    assert cm.depends_on(gw)["migrate"] == "service_completed_successfully"
    assert cm.depends_on(migrate)["postgres"] == "service_healthy"
    for s in (gw, migrate):
        env = s["environment"]
        assert env["GATEWAY_CONFIG"] == GATEWAY_CONFIG_IN_CONTAINER
        assert env["GATEWAY_DATABASE_URL"].startswith("postgresql+asyncpg://gateway:")
        assert env["GATEWAY_DATABASE_URL"].endswith("@postgres:5432/gateway")
        (mount,) = [c for c in s["configs"] if c["target"] == GATEWAY_CONFIG_IN_CONTAINER]
        # the config loads, prices every model, and needs no variable the service lacks
        config = load_config(DEPLOY / m["configs"][mount["source"]]["file"], environ=env)
        build_price_table(config)
        assert {p.name for p in config.providers} >= {"local-llama"}
    # the drain (delay, timeout, the cut's grace: gateway/server.py), then the ledger's flush
    d = config.server
    assert (
        int(gw["stop_grace_period"].rstrip("s")) > d.drain_delay_s + d.drain_timeout_s + CUT_GRACE_S
    )


def test_vllm_is_served_as_the_gpu_benchmark_served_it() -> None:
    vllm = model("compose.yaml")["services"]["vllm"]
    assert parse_flags(vllm["command"]) == {**run_sh_flags(), "--port": "8000"}
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert "HF_TOKEN" in vllm["environment"]
    assert "hf-cache:/root/.cache/huggingface" in vllm["volumes"]
    assert vllm["image"].startswith("vllm/vllm-openai:v")


def test_the_simulated_stack_replaces_vllm_with_the_simulator() -> None:
    services = model("compose.sim.yaml")["services"]
    assert "vllm" not in services
    sim = services["simulator"]
    assert sim["command"][0] == "simulate" and "llama-3.1-8b-h100" in sim["command"]
    assert sim["networks"]["default"]["aliases"] == ["vllm"]  # where Prometheus scrapes
    assert cm.depends_on(services["gateway"])["simulator"] == "service_healthy"
    config = load_config(DEPLOY / "config" / "gateway.sim.yaml", environ={})
    assert all(p.simulated and "simulator:8000" in p.api_base for p in config.providers)


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    m = model("compose.yaml")
    targets = {c["source"]: c["target"] for c in m["services"]["grafana"]["configs"]}
    assert targets["gateway_dashboard"] == "/etc/grafana/dashboards/gateway.json"
    assert targets["grafana_datasources"].startswith("/etc/grafana/provisioning/datasources/")
    assert targets["grafana_dashboards"].startswith("/etc/grafana/provisioning/dashboards/")
