"""Evidence tallies, the daily caps' bookkeeping, sampling rates and the config's checks."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import ConfigError, GatewayConfig, parse_config
from gateway.core import ClientRequest, Price, Result, Usage
from gateway.metrics import GatewayMetrics
from gateway.quality.budget import DailySpend
from gateway.quality.evidence import Evidence
from gateway.quality.intervals import bootstrap, wilson
from gateway.quality.shadow import Shadow, ShadowAnswer


def config(**extra: Any) -> GatewayConfig:
    raw: dict[str, Any] = {
        "providers": [{"name": "p", "kind": "openai", "api_base": "http://127.0.0.1:9/v1"}],
        "models": [
            {
                "name": "small",
                "provider": "p",
                "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},
            },
            {"name": "big", "provider": "p", "price": {"input_per_mtok": 3, "output_per_mtok": 15}},
        ],
        "routes": [
            {
                "name": "auto",
                "candidates": ["small", "big"],
                "shadow": {"sample_rate": 0.2, "reference": "big"},
            },
            {"name": "plain", "candidates": ["small"]},
        ],
    }
    raw.update(extra)
    return parse_config(raw, source="test", environ={})


def test_pass_fail_evidence_gets_a_wilson_interval() -> None:
    ev = Evidence()
    assert ev.agreement("t", "small") is None
    for i in range(100):
        ev.add("t", "small", "big", 1.0 if i < 90 else 0.0, i < 90)
    got = ev.agreement("t", "small")
    assert got is not None
    assert (got.n, got.mean, got.reference) == (100, 0.9, "big")
    assert (got.low, got.high) == wilson(90, 100)
    assert got.describe() == "t small vs big agreement 0.900 [0.826, 0.945] n=100"
    assert ev.agreement("t", "big") is None and ev.agreement("other", "small") is None


def test_score_evidence_gets_a_bootstrap_interval_and_load_matches_add() -> None:
    scores = [random.Random(i).random() for i in range(300)]
    added, loaded = Evidence(), Evidence()
    for s in scores:
        added.add("t", "small", "big", s, None)
    loaded.load(("t", "small", "big", s, None) for s in scores)
    a, b = added.agreement("t", "small"), loaded.agreement("t", "small")
    assert a is not None and b is not None
    assert a.mean == pytest.approx(sum(scores) / 300)
    assert (b.low, b.high) == bootstrap(scores)
    # past EXACT_UP_TO the interval is refreshed every 1% of n: never further off than that
    assert a.low == pytest.approx(b.low, abs=0.01) and a.n == b.n == 300
    assert a.low < a.mean < a.high


def test_the_reference_with_most_samples_answers() -> None:
    ev = Evidence()
    ev.add("t", "small", "big", 1.0, True)
    for _ in range(3):
        ev.add("t", "small", "other", 0.0, False)
    got = ev.agreement("t", "small")
    assert got is not None and got.reference == "other" and got.n == 3
    assert [x.reference for x in ev.all()] == ["big", "other"]


def test_daily_spend_caps_per_route_and_in_all() -> None:
    day, next_day = date(2026, 12, 6), date(2026, 12, 7)
    spend = DailySpend(total_cap=Decimal("1.5"))
    cap = Decimal("1.0")
    assert spend.refusal(day, "auto", cap, Decimal("0.6")) is None
    spend.reserve("auto", Decimal("0.6"))
    assert spend.refusal(day, "auto", cap, Decimal("0.6")) == "dropped_cap"  # in flight counts
    spend.settle(day, "auto", Decimal("0.6"), Decimal("0.5"))
    assert spend.refusal(day, "auto", cap, Decimal("0.5")) is None
    spend.restore(day, {"other": Decimal("0.9")})
    assert spend.refusal(day, "auto", cap, Decimal("0.2")) == "dropped_budget"  # 1.6 > 1.5
    assert spend.refusal(next_day, "auto", cap, Decimal("0.9")) is None  # a new UTC day
    assert spend.refusal(next_day, "auto", Decimal(0), Decimal(0)) == "dropped_cap"


def _shadow(cfg: GatewayConfig, seed: int = 1) -> Shadow:
    metrics = GatewayMetrics(CollectorRegistry())
    return Shadow(cfg, Evidence(), metrics, {}, rand=random.Random(seed).random)


def _req(i: int, system: str = "You sort tickets.") -> ClientRequest:
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": f"ticket {i}"}]
    return ClientRequest("chat", {"model": "auto", "messages": msgs}, "auto")


def test_sampling_rate_is_within_binomial_bounds() -> None:
    n, p = 5000, 0.2
    shadow = _shadow(config())
    hits = sum(shadow.tap(_req(i), "auto", f"r{i}", 0.0) is not None for i in range(n))
    sd = (n * p * (1 - p)) ** 0.5  # 28.3
    assert abs(hits - n * p) < 4 * sd, hits
    # a route without shadow, an unrouted request, an embedding: never sampled
    assert all(shadow.tap(_req(i), "plain", f"p{i}", 0.0) is None for i in range(200))
    assert all(shadow.tap(_req(i), None, f"n{i}", 0.0) is None for i in range(200))
    emb = ClientRequest("embeddings", {"model": "auto", "input": "x"}, "auto")
    assert all(shadow.tap(emb, "auto", f"e{i}", 0.0) is None for i in range(200))


def test_boost_raises_one_tasks_rate_until_ended() -> None:
    shadow = _shadow(config(), seed=2)
    task = "sp:" + __import__("hashlib").sha256(b"You sort tickets.").hexdigest()[:12]
    shadow.boost(task, 1.0)
    assert all(shadow.tap(_req(i), "auto", f"b{i}", 0.0) is not None for i in range(200))
    other = sum(
        shadow.tap(_req(i, "Other."), "auto", f"o{i}", 0.0) is not None for i in range(1000)
    )
    assert 120 < other < 280  # still 0.2
    shadow.boost(task, 0.0)
    back = sum(shadow.tap(_req(i), "auto", f"c{i}", 0.0) is not None for i in range(1000))
    assert 120 < back < 280


def test_config_checks_shadow_and_tasks() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\].shadow.reference: unknown model 'nope'"):
        config(routes=[{"name": "auto", "candidates": ["small"], "shadow": {"reference": "nope"}}])
    with pytest.raises(ConfigError, match=r"tasks\[0\].judge: unknown model"):
        config(tasks=[{"name": "t", "judge": "nope"}])
    with pytest.raises(ConfigError, match="tasks: the name 't' is used twice"):
        config(tasks=[{"name": "t"}, {"name": "t"}])
    with pytest.raises(ConfigError, match="unknown key"):
        config(tasks=[{"name": "t", "compare": "label", "threshold": 1}])
    with pytest.raises(ConfigError, match="compare"):
        config(tasks=[{"name": "t", "compare": "bleu"}])
    cfg = config(tasks=[{"name": "t", "compare": "json_fields"}], evidence={"max_usd_per_day": 3})
    assert cfg.tasks[0].compare == "json_fields" and cfg.evidence.team == "evidence"
    assert cfg.routes[0].shadow is not None and cfg.routes[0].shadow.max_concurrency == 4


def test_each_worker_takes_its_share_of_the_caps_and_concurrency() -> None:
    """Two workers: each lets 2 of the route's 4 calls fly and spends half its $1 a day. The
    pipeline's shadow call is stood in for by a coroutine that holds until released."""
    cfg = config(
        routes=[
            {
                "name": "auto",
                "candidates": ["small"],
                "shadow": {"sample_rate": 1, "reference": "big", "max_concurrency": 4,
                           "max_usd_per_day": 1.0},
            }
        ]
    )  # fmt: skip
    metrics = GatewayMetrics(CollectorRegistry())
    prices = {"big": Price.per_mtok(3, 15)}
    shadow = Shadow(cfg, Evidence(), metrics, prices, rand=lambda: 0.0, share=0.5)
    release = asyncio.Event()
    answer = Result({"choices": [{"message": {"content": "billing"}}]}, Usage(1, 1))

    async def call(req: ClientRequest, *, shadow_of: str, team: str | None) -> ShadowAnswer:
        await release.wait()
        return ShadowAnswer(answer, "s-" + shadow_of, Decimal("0.2"))

    shadow.bind(call)

    def outcome(name: str) -> float:
        return float(metrics.shadow_samples.labels("auto", name)._value.get())

    async def run() -> None:
        for i in range(3):
            tap = shadow.tap(_req(i), "auto", f"r{i}", 0.0)
            assert tap is not None
            tap.result = answer
            shadow.finished(f"r{i}", True, "small", Usage(1000, 1000), Decimal("0.001"))
        assert outcome("dropped_concurrency") == 1  # 2 of 4 in flight here
        release.set()
        await asyncio.sleep(0.05)
        assert outcome("compared") == 2 and shadow.spend.spent_today("auto") == Decimal("0.4")
        # $0.018 expected a call (1000 + 1000 tokens at 3/15 per Mtok): $0.4 + 0.018 fits
        # in the half-dollar share; after a restored $0.2 more (its half of 0.4), it does not
        shadow.restore(shadow.spend.day or date.today(), {"auto": Decimal("0.4")})
        tap = shadow.tap(_req(9), "auto", "r9", 0.0)
        assert tap is not None
        shadow.finished("r9", True, "small", Usage(1000, 1000), Decimal("0.001"))
        assert outcome("dropped_cap") == 1
        await shadow.aclose()

    asyncio.run(run())


def test_a_challenger_is_shadowed_when_the_reference_served() -> None:
    """`unknown: reference`: the reference answers the client, the challenger is tried in the
    background, and the pair is kept as (challenger, reference)."""
    metrics = GatewayMetrics(CollectorRegistry())
    evidence = Evidence()
    shadow = Shadow(config(), evidence, metrics, {}, rand=lambda: 0.99)  # 0.2 never hits
    asked: list[str] = []

    async def call(req: ClientRequest, *, shadow_of: str, team: str | None) -> ShadowAnswer:
        asked.append(req.model)
        answer = Result({"choices": [{"message": {"content": "billing"}}]}, Usage(1, 1))
        return ShadowAnswer(answer, "s-" + shadow_of, Decimal("0.001"))

    shadow.bind(call)
    req = _req(1)
    task = "sp:" + __import__("hashlib").sha256(b"You sort tickets.").hexdigest()[:12]

    async def run() -> None:
        assert shadow.tap(req, "auto", "r1", 0.0) is None  # not boosted: rate 0.2, draw 0.99
        shadow.boost(task, 1.0, challenger="small")
        tap = shadow.tap(_req(2), "auto", "r2", 0.0)
        assert tap is not None
        tap.result = Result({"choices": [{"message": {"content": "other"}}]}, Usage(1, 1))
        shadow.finished("r2", True, "big", Usage(1, 1), Decimal("0.01"))
        await asyncio.sleep(0.05)
        await shadow.aclose()

    asyncio.run(run())
    assert asked == ["small"]
    got = evidence.agreement(task, "small")
    assert got is not None and got.reference == "big" and got.n == 1 and got.mean == 0.0
    assert evidence.agreement(task, "big") is None
