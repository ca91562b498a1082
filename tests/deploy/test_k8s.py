"""deploy/k8s: both overlays render, every object is valid Kubernetes, and they fit together.

Rendered offline twice where kustomize is on PATH (a `kustomize` binary, or the one built
into `kubectl kustomize`: this machine image has kubectl 1.32, kustomize v5.5): by it and by
tests/deploy/kustomize_lite.py, and the two must produce the same objects; elsewhere by
kustomize_lite alone (no package registry ships kustomize v5). Then every object is validated against the Kubernetes API's JSON schemas as the
`kubernetes-validate` package ships them (strict: unknown fields are errors), for the oldest
and newest Kubernetes versions we claim. Then the wiring: selectors match pods, every
ConfigMap and Secret a pod uses is rendered (production's Secret is the one documented as made
outside), the probes and the drain are as deploy/README.md describes, vLLM is served as
deploy/gpu/run.sh served it, and the gateway's config lists exactly the vLLM pods that exist.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import parse_config
from gateway.pricing.table import build_price_table
from gateway.server import CUT_GRACE_S
from tests.deploy import kustomize_lite
from tests.deploy.vllm_flags import parse_flags, run_sh_flags

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("trial", "production")
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# made outside the repository in production (deploy/README.md, step 4)
EXTERNAL = {"production": {("Secret", "gateway-secrets")}, "trial": set()}
Obj = dict[str, Any]


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def keyed(objs: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


@cache
def render(overlay: str) -> tuple[Obj, ...]:
    path = K8S / "overlays" / overlay
    ours = kustomize_lite.render(path)
    command = kustomize_command()
    if command is None:
        return tuple(ours)
    out = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d]
    assert keyed(ours) == keyed(theirs), f"kustomize_lite and {command[0]} disagree on {overlay}"
    return tuple(theirs)


def by_kind(objs: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def one(objs: tuple[Obj, ...], kind: str, prefix: str) -> Obj:
    (found,) = [o for name, o in by_kind(objs, kind).items() if name.startswith(prefix)]
    return found


def pod_spec(o: Obj) -> Obj:
    spec: Obj = o["spec"]["template"]["spec"]
    return spec


def workloads(objs: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "Job")]


def container(o: Obj, name: str) -> Obj:
    found: list[Obj] = [c for c in pod_spec(o)["containers"] if c["name"] == name]
    (c,) = found
    return c


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_kubernetes(overlay: str, version: str) -> None:
    objs = render(overlay)
    assert len(objs) >= 9
    for o in objs:
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']}/{o['metadata']['name']}: {e.message} at {e.path}")
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "llm-gateway", o["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    objs = render(overlay)
    have = {(o["kind"], o["metadata"]["name"]) for o in objs}
    wanted: set[tuple[str, str]] = set()
    for w in workloads(objs):
        spec = pod_spec(w)
        for c in spec["containers"] + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    wanted.add(("Secret", ref["name"]))
        for v in spec.get("volumes", []):
            if "configMap" in v:
                wanted.add(("ConfigMap", v["configMap"]["name"]))
        labels = w["spec"]["template"]["metadata"]["labels"]
        if w["kind"] != "Job":
            assert w["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert wanted - have == EXTERNAL[overlay]
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(objs)]
    for s in by_kind(objs, "Service").values():
        assert any(s["spec"]["selector"].items() <= p.items() for p in pods), s["metadata"]
    for kind in ("PodDisruptionBudget",):
        for o in by_kind(objs, kind).values():
            assert any(o["spec"]["selector"]["matchLabels"].items() <= p.items() for p in pods)
    hpa = by_kind(objs, "HorizontalPodAutoscaler")["gateway"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) in have
    assert hpa["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_probes_resources_and_drain(overlay: str) -> None:
    objs = render(overlay)
    deployment = by_kind(objs, "Deployment")["gateway"]
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    gw = container(deployment, "gateway")
    assert gw["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/health"
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= gw["resources"][key].keys()
    # the drain (gateway/server.py: the delay, the timeout, the cut's grace), any preStop
    # sleep, and 10 s for the ledger's last flush fit the grace period
    raw = yaml.safe_load(one(objs, "ConfigMap", "gateway-config")["data"]["gateway.yaml"])
    drain = parse_config(raw, source="configmap", environ={}).server
    assert drain.drain_delay_s >= 5  # endpoints and load balancers take seconds to move away
    pre_stop = gw.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    sleep_s = int(pre_stop[1]) if pre_stop else 0
    needed = sleep_s + drain.drain_delay_s + drain.drain_timeout_s + CUT_GRACE_S + 10
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= needed
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"]
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == 10001  # the image's user
    (init,) = pod_spec(deployment)["initContainers"]
    assert "current_revision" in init["command"][-1]  # waits, never migrates
    job = by_kind(objs, "Job")["gateway-migrate"]
    assert container(job, "migrate")["args"] == ["db", "upgrade"]
    assert container(job, "migrate")["image"] == gw["image"] == init["image"]
    pdb = by_kind(objs, "PodDisruptionBudget")["gateway"]
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_vllm_pool(overlay: str) -> None:
    objs = render(overlay)
    sts = by_kind(objs, "StatefulSet")["vllm"]
    c = container(sts, "vllm")
    assert parse_flags(c["args"]) == {**run_sh_flags(), "--port": "8000"}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    home = {e["name"]: e.get("value") for e in c["env"]}["HF_HOME"]
    assert home.startswith(mount["mountPath"] + "/")  # the weights land on the volume
    assert sts["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    service = by_kind(objs, "Service")[sts["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"  # a DNS name per pod

    # the gateway's config names exactly the pods the StatefulSet makes, and loads
    cm = one(objs, "ConfigMap", "gateway-config")
    config = parse_config(yaml.safe_load(cm["data"]["gateway.yaml"]), source=overlay, environ={})
    build_price_table(config)
    pods = [f"http://vllm-{i}.vllm:8000/v1" for i in range(sts["spec"]["replicas"])]
    assert list(config.provider("local-llama").api_bases) == pods


def test_trial_bundles_the_databases_and_production_does_not() -> None:
    trial, prod = render("trial"), render("production")
    assert {"postgres", "redis"} <= by_kind(trial, "Service").keys()
    assert not {"postgres", "redis"} & by_kind(prod, "Service").keys()
    secret = one(trial, "Secret", "gateway-secrets")
    keys = set(secret["data"])
    assert {"GATEWAY_DATABASE_URL", "POSTGRES_PASSWORD", "HF_TOKEN"} <= keys
    images = {
        container(w, c["name"])["image"] for w in workloads(prod) for c in pod_spec(w)["containers"]
    }
    assert all(":" in i and not i.endswith(":latest") for i in images), images
    assert by_kind(prod, "StatefulSet")["vllm"]["spec"]["replicas"] == 2


def test_kustomize_lite_names_generated_objects_as_kustomize_does() -> None:
    """Names kustomize v5.5 gave these generators (`literals: [a=b]`), and a long Secret value
    as kyaml wraps it: the renderer's hashes hold without a kustomize to compare with."""
    cm = {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}}
    assert kustomize_lite.content_hash(cm) == "4h2mbtbbt6"
    secret = {"kind": "Secret", "type": "Opaque", "metadata": {"name": "s"}, "data": {"a": "Yg=="}}
    assert kustomize_lite.content_hash(secret) == "k695gkmbtk"
    wrapped = kustomize_lite.encode_base64("x" * 60)
    assert wrapped.split("\n") == [wrapped[:70], wrapped[71:-1], ""]
