"""The quality gate in routing (routing/gate.py, Router._gated) with an Evidence filled by hand:
it flips when the interval's lower bound crosses the bar, both ways, and says why."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from gateway.config import ConfigError, GatewayConfig, parse_config
from gateway.core import ClientRequest
from gateway.pricing.table import build_price_table
from gateway.quality.evidence import Evidence
from gateway.routing.router import Router

SYSTEM = "You sort support tickets into one of six labels."
DIGEST = hashlib.sha256(SYSTEM.encode()).hexdigest()
REF = "claude-haiku"


def price(i: float, o: float) -> dict[str, float]:
    return {"input_per_mtok": i, "output_per_mtok": o}


def config(quality: dict[str, Any] | None = None, **route: Any) -> GatewayConfig:
    gate = {"min_agreement": 0.9, "min_samples": 20, "tasks": {"chat": {"min_agreement": 0.6}}}
    raw: dict[str, Any] = {
        "providers": [
            {"name": "openai", "kind": "openai", "api_key": "sk-x"},
            {"name": "anthropic", "kind": "anthropic", "api_key": "sk-ant-x"},
            {
                "name": "local",
                "kind": "vllm",
                "api_base": "http://127.0.0.1:9/v1",
                "gpu": {"name": "H100", "hourly_usd": 2.69},
            },
        ],
        "models": [
            {"name": "llama", "provider": "local"},
            {"name": "gpt-4o-mini", "provider": "openai", "price": price(0.15, 0.60)},
            {"name": "gpt-4o", "provider": "openai", "price": price(2.50, 10.0)},
            {"name": REF, "provider": "anthropic", "price": price(0.80, 4.00)},
        ],
        "tasks": [
            {"name": "tickets", "match": {"system_prompt_sha256": DIGEST}, "compare": "label"}
        ],
        "routes": [
            {
                "name": "auto",
                "policy": "local-first",
                "candidates": ["llama", "gpt-4o-mini", "gpt-4o"],
                "shadow": {"reference": REF, "sample_rate": 0.05},
                "quality": {**gate, **(quality or {})},
                **route,
            }
        ],
    }
    return parse_config(raw, source="test", environ={})


class Boosts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str | None]] = []

    def __call__(self, task: str, rate: float, challenger: str | None) -> None:
        self.calls.append((task, rate, challenger))


def router(cfg: GatewayConfig, evidence: Evidence, boost: Boosts | None = None) -> Router:
    return Router(cfg, build_price_table(cfg), evidence=evidence, boost=boost)


def req(task: str | None = "tickets", model: str = "auto", **body: Any) -> ClientRequest:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "refund?"}]
    r = ClientRequest("chat", {"model": model, "messages": messages, **body}, model)
    r.task = task
    return r


def add(ev: Evidence, model: str, passes: int, fails: int = 0, task: str = "tickets") -> None:
    for _ in range(passes):
        ev.add(task, model, REF, 1.0, True)
    for _ in range(fails):
        ev.add(task, model, REF, 0.0, False)


def test_the_gate_flips_exactly_when_the_lower_bound_crosses_the_bar_both_ways() -> None:
    ev = Evidence()
    add(ev, "gpt-4o-mini", 100)  # the fallback is proven good throughout
    r = router(config(), ev)
    seen: list[bool] = []
    # 60 agreements, 20 disagreements, 300 agreements: the bound rises, falls, rises again
    for passed in [True] * 60 + [False] * 20 + [True] * 300:
        ev.add("tickets", "llama", REF, float(passed), passed)
        a = ev.agreement("tickets", "llama")
        assert a is not None
        decision = r.decide(req())
        local = decision.targets[0].model == "llama"
        assert local == (a.n < 20 or a.low >= 0.9), (a, decision.reason)
        if not seen or seen[-1] != local:
            seen.append(local)
    # exploring, then 20/20 (low 0.839) refused, 40/40 (0.912) served, the misses refuse it,
    # and enough agreement after them serves it again
    assert seen == [True, False, True, False, True]


def test_reasons_name_the_evidence_on_each_side_of_the_bar() -> None:
    ev = Evidence()
    add(ev, "llama", 40)
    add(ev, "gpt-4o-mini", 100)
    r = router(config(), ev)
    d = r.decide(req())
    assert d.targets[0].model == "llama"
    assert (
        "→ chosen (quality: tickets llama vs claude-haiku agreement 1.000 [0.912, 1.000] n=40 ≥ 0.9)"
        in d.reason
    )
    add(ev, "llama", 0, 10)
    d = r.decide(req())
    assert d.targets[0].model == "gpt-4o-mini"
    assert "ineligible: llama (quality: tickets llama vs claude-haiku agreement 0.800 [" in d.reason
    assert "n=50 < 0.9)" in d.reason


def test_before_min_samples_explore_serves_and_raises_the_shadow_rate() -> None:
    ev, boosts = Evidence(), Boosts()
    add(ev, "llama", 19)  # perfect, but one short of min_samples
    add(ev, "gpt-4o-mini", 100)
    r = router(config(), ev, boosts)
    d = r.decide(req())
    assert d.targets[0].model == "llama"
    assert "(quality: tickets llama exploring, n=19 < 20 (shadowed at ≥ 0.5))" in d.reason
    assert boosts.calls == [("tickets", 0.5, None)]
    add(ev, "llama", 1)
    d = r.decide(req())
    assert "n=20 ≥ 0.9" not in d.reason  # 20/20: low 0.839, below the bar
    assert d.targets[0].model == "gpt-4o-mini"
    # gpt-4o-mini, proven, answers: sampled as configured (its pairs are its own evidence)
    assert boosts.calls[-1] == ("tickets", 0.0, None)
    # where the reference answers instead, the refused llama is its challenger at the route's
    # rate, so that it can earn its way back
    alone = router(config(candidates=["llama"]), ev, boosts)
    assert alone.decide(req()).targets[0].model == REF
    refused_call: tuple[str, float, str | None] = ("tickets", 0.05, "llama")
    assert boosts.calls[-1] == refused_call
    add(ev, "llama", 40)
    assert alone.decide(req()).targets[0].model == "llama"
    assert boosts.calls[-1] == ("tickets", 0.0, None)  # proven good: sampling as configured


def test_sampling_is_raised_only_for_requests_an_unproven_model_answers() -> None:
    ev, boosts = Evidence(), Boosts()
    add(ev, "llama", 100)  # proven: answers, sampled as configured
    r = router(config(), ev, boosts)
    assert r.decide(req()).targets[0].model == "llama"
    assert boosts.calls == []  # gpt-4o-mini is unproven, but it does not answer this one


def test_unknown_reference_sends_the_task_to_the_reference_with_a_challenger() -> None:
    ev, boosts = Evidence(), Boosts()
    add(ev, "gpt-4o-mini", 100)
    r = router(config({"unknown": "reference", "explore_rate": 0.25}), ev, boosts)
    d = r.decide(req())
    assert [t.model for t in d.targets][0] == REF
    assert "claude-haiku (anthropic) est $" in d.reason
    assert "(quality: tickets llama unproven, n=0 < 20: to claude-haiku)" in d.reason
    assert boosts.calls == [("tickets", 0.25, "llama")]
    add(ev, "llama", 60)
    assert r.decide(req()).targets[0].model == "llama"
    assert boosts.calls[-1] == ("tickets", 0.0, None)


def test_nothing_cheap_proven_falls_to_the_reference_and_dearer_models_are_not_gated() -> None:
    ev = Evidence()
    add(ev, "llama", 10, 40)
    add(ev, "gpt-4o-mini", 10, 40)
    d = router(config(), ev).decide(req())
    assert [t.model for t in d.targets] == [REF, "gpt-4o"]  # the gated two are refused
    # gpt-4o is dearer than the reference: it needs no evidence
    assert all(v.quality is None for v in d.views if v.target.model in ("gpt-4o", REF))
    only_cheap = config(candidates=["llama", "gpt-4o-mini"])
    d = router(only_cheap, ev).decide(req())
    assert [t.model for t in d.targets] == [REF]


def test_per_task_bars_and_the_system_prompt_names_the_task() -> None:
    ev = Evidence()
    for _ in range(100):
        ev.add("chat", "llama", REF, 0.7, None)  # text scores: a bootstrap interval near 0.7
    add(ev, "llama", 100, task="tickets")
    r = router(config(), ev)
    assert "≥ 0.6" in r.decide(req("chat")).reason  # chat's own bar
    unnamed = req(None)
    assert r.decide(unnamed).targets[0].model == "llama"
    assert unnamed.task == "tickets"  # kept on the request for the shadow tap
    meta = req(None, metadata={"task": "chat"})
    r.decide(meta)
    assert meta.task == "chat"
    other = ClientRequest(
        "chat", {"model": "auto", "messages": [{"role": "system", "content": "Other."}]}, "auto"
    )
    r.decide(other)
    assert other.task == "sp:" + hashlib.sha256(b"Other.").hexdigest()[:12]


def test_explain_shows_each_verdict_and_changes_nothing() -> None:
    ev, boosts = Evidence(), Boosts()
    add(ev, "llama", 200, 4)
    r = router(config(), ev, boosts)
    out = r.explain(req())
    assert out["task"] == "tickets"
    by_model = {c["model"]: c for c in out["candidates"]}
    q = by_model["llama"]["quality"]
    assert q["serves"] is True and q["proven"] is True and q["n"] == 204
    assert q["reference"] == REF and q["min_agreement"] == 0.9 and q["low"] >= 0.9
    assert by_model["gpt-4o-mini"]["quality"]["proven"] is False
    assert by_model["gpt-4o"]["quality"] is None
    assert "exploring" in by_model["gpt-4o-mini"]["quality"]["note"]
    assert boosts.calls == []  # explaining raises no shadow rate


def test_pinned_models_and_other_operations_are_not_gated() -> None:
    ev = Evidence()
    add(ev, "llama", 0, 100)
    r = router(config(), ev)
    assert r.decide(req(model="llama")).targets[0].model == "llama"
    emb = ClientRequest("embeddings", {"model": "auto", "input": "x"}, "auto")
    emb_reason = r.explain(emb)["reason"]
    assert "quality" not in emb_reason


def test_a_gate_needs_the_route_shadowed() -> None:
    raw = config().model_dump(mode="json")
    raw["routes"][0]["shadow"] = None
    with pytest.raises(ConfigError, match=r"routes\[0\]\.quality: needs `shadow:`"):
        parse_config(raw, source="test", environ={})
