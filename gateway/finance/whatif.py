"""`gateway whatif`: recorded traffic priced as if it had gone elsewhere.

Four questions, one answer shape (actual against counterfactual, per group and in total):

    --model NAME       every request served by NAME instead (another model's output length:
                       the recorded one × --output-ratio)
    --price-file FILE  every request at another price list (prices.py)
    --policy CONFIG    the requests replayed in time order through CONFIG's routes, models
                       and GPU pools (replay.py)
    --gpus N           the same replay with the self-hosted pool at N GPUs

The ledger is read once, summed in SQL (whatif_query.py); everything after is pure Decimal
arithmetic. A report always says what a replay cannot know and how it was estimated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.core import Target
from gateway.finance.period import Period
from gateway.finance.prices import PriceOf, load_price_file, model_tiered_price
from gateway.finance.replay import Candidate, Plan, Pool, PoolUse, Replayer, Spill
from gateway.finance.reprice import reprice
from gateway.finance.whatif_lines import ZERO, Groups, Line, total
from gateway.finance.whatif_query import GROUP_KEYS, Query, Slice, load_slices
from gateway.ledger.calibration import latest_calibration
from gateway.pricing.table import build_price_table
from gateway.pricing.tiers import TieredPrice, tier_floors
from gateway.providers.registry import operations
from gateway.routing.router import model_price

COMMON_NOTES = (
    "Output length: a request served by another model is assumed to produce its recorded "
    "output tokens × {ratio} (--output-ratio); the model that served it keeps what it wrote.",
    "Prompt tokens are the recorded counts (another model's tokenizer may count differently); "
    "recorded cache reads and writes are priced at the other model's cache rates (its input "
    "rate where it has none), as if its prompt cache had hit the same way.",
    "Long-context tiers are chosen per request from its recorded prompt size.",
    "Latency and time to first token are not replayed: nothing here says whether the "
    "counterfactual would have met an SLO.",
    "Requests the gateway refused before any upstream call are left out (they cost nothing).",
)
REPLAY_NOTES = (
    "Capacity: a self-hosted pool serves at most its calibrated tokens/s (prompt + output) "
    "× 60 a minute, scaled by its GPU count. A minute's demand above that spills, in the same "
    "share for every request of the minute, to each request's next candidate in its policy's "
    "order (a fluid model: nothing queues into the next minute; concurrency limits are not "
    "replayed). With no other candidate it stays on the pool, counted as over capacity.",
    "Policies rank each minute's requests by their average recorded size with every pool "
    "assumed to have headroom; eligibility checks the context window and the endpoint only "
    "(tools, images and JSON mode are not recorded).",
    "Local traffic is charged like the ledger charges it (the pool's amortised $/token); the "
    "fleet section prices the GPUs by the hour instead, idle hours included.",
)


@dataclass(frozen=True, slots=True)
class Scenario:
    period: Period
    group_by: tuple[str, ...] = ("model",)
    model: str | None = None
    price_file: Path | None = None
    policy: Path | None = None
    gpus: int | None = None
    gpu_provider: str | None = None  # which pool --gpus sizes, when there are several
    output_ratio: Decimal = Decimal(1)

    @property
    def since(self) -> datetime:
        return self.period.since

    @property
    def until(self) -> datetime:
        return self.period.until

    def question(self) -> str:
        if self.model:
            return f"all traffic served by {self.model}"
        if self.price_file:
            return f"the traffic at the prices in {self.price_file}"
        parts = []
        if self.policy:
            parts.append(f"the traffic routed by {self.policy}")
        if self.gpus is not None:
            parts.append(f"the self-hosted pool at {self.gpus} GPU(s)")
        return " with ".join(parts) or "the traffic as recorded"


@dataclass(frozen=True, slots=True)
class PoolReport:
    name: str
    gpus: int
    tokens_per_minute: Decimal
    capacity_source: str
    use: PoolUse


@dataclass(frozen=True, slots=True)
class Fleet:
    hours: Decimal
    actual_gpus: int
    whatif_gpus: int
    actual_gpu_usd: Decimal
    whatif_gpu_usd: Decimal
    actual_api_usd: Decimal
    whatif_api_usd: Decimal


@dataclass(frozen=True, slots=True)
class WhatIfReport:
    question: str
    since: datetime
    until: datetime
    group_by: tuple[str, ...]
    lines: list[Line]
    total: Line
    notes: list[str]
    pools: list[PoolReport] = field(default_factory=list)
    spills: dict[str, Spill] = field(default_factory=dict)
    fleet: Fleet | None = None
    tz: str = "UTC"
    source: str = "raw"  # what the ledger was read from: "rollup" or "raw" rows


def check(s: Scenario) -> None:
    modes = [s.model is not None, s.price_file is not None, s.policy or s.gpus is not None]
    if sum(bool(m) for m in modes) != 1:
        raise ConfigError(
            "say what to compare with: one of --model, --price-file, --policy, --gpus "
            "(--gpus may size the pool of --policy's config)"
        )
    unknown = [k for k in s.group_by if k not in GROUP_KEYS]
    if unknown:
        raise ConfigError(
            f"--group-by: unknown {', '.join(unknown)}; known: {', '.join(GROUP_KEYS)}"
        )
    if s.output_ratio < 0:
        raise ConfigError("--output-ratio must not be negative")
    if s.gpus is not None and s.gpus < 0:
        raise ConfigError("--gpus must not be negative")


def served_names(config: GatewayConfig) -> Callable[[Slice], str]:
    """A ledger row's served model by its configured name (provider + upstream model)."""
    names = {(m.provider, m.target_model): m.name for m in config.models}
    return lambda s: names.get((s.provider, s.upstream_model), s.upstream_model)


async def whatif(engine: AsyncEngine, config: GatewayConfig, s: Scenario) -> WhatIfReport:
    check(s)
    if s.model is not None or s.price_file is not None:
        return await _reprice(engine, config, s)
    return await _replay(engine, config, s)


def _notes(s: Scenario, extra: list[str]) -> list[str]:
    return [n.format(ratio=s.output_ratio) for n in COMMON_NOTES] + extra


def _report(s: Scenario, groups: Groups, notes: list[str], **kw: object) -> WhatIfReport:
    lines = groups.lines()
    kw.setdefault("tz", str(s.period.tz.key))
    return WhatIfReport(
        s.question(),
        s.since,
        s.until,
        s.group_by,
        lines,
        total(lines, len(s.group_by)),
        notes,
        **kw,  # type: ignore[arg-type]
    )


async def _reprice(engine: AsyncEngine, config: GatewayConfig, s: Scenario) -> WhatIfReport:
    name_of = served_names(config)
    ratio_of: Callable[[str], Decimal]
    if s.model is not None:
        target = model_tiered_price(s.model, config, build_price_table(config))
        price_of: PriceOf = lambda _name: target  # noqa: E731
        ratio_of = lambda name: Decimal(1) if name == s.model else s.output_ratio  # noqa: E731
        floors = target.thresholds
    else:
        assert s.price_file is not None
        price_of = load_price_file(s.price_file, config)
        ratio_of = lambda _name: Decimal(1)  # noqa: E731 (the same models: their own output)
        floors = tier_floors(p for m in config.models if (p := price_of(m.name)) is not None)
    query = Query(s.period, s.group_by, floors)
    slices = await load_slices(engine, query)
    # a served model the config no longer names may bring tiers of its own: sum again with them
    needed = tier_floors(p for n in {name_of(x) for x in slices} if (p := price_of(n)))
    if not set(needed) <= set(floors):
        floors = tuple(sorted(set(floors) | set(needed)))
        query = Query(s.period, s.group_by, floors)
        slices = await load_slices(engine, query)
    groups = Groups(s.group_by)
    kept = reprice(slices, groups, floors, name_of, price_of, ratio_of)
    extra = []
    local = {m.name for m in config.models if config.provider(m.provider).gpu is not None}
    if s.model in local:
        extra.append(
            f"{s.model} is self-hosted: priced at its pool's amortised $/token as if the pool "
            "had room for all of it (--gpus replays what would fit)."
        )
    if kept:
        extra.append(
            "Not priced by the price file, so kept at their recorded cost: "
            + ", ".join(sorted(kept))
            + "."
        )
    return _report(s, groups, _notes(s, extra), source=query.source(engine.dialect.name))


async def _measured(engine: AsyncEngine, cfg: GatewayConfig) -> dict[str, tuple[Decimal, str]]:
    out = {}
    for p in cfg.providers:
        if p.gpu is None:
            continue
        cal = await latest_calibration(engine, p.name)
        if cal is not None:
            out[p.name] = (Decimal(str(cal.total_tokens_per_s)), f"calibration {cal.run_id}")
        else:
            out[p.name] = (Decimal(str(p.gpu.throughput_tokens_per_s)), "config")
    return out


def sized_pools(
    cfg: GatewayConfig, s: Scenario, measured: Mapping[str, tuple[Decimal, str]]
) -> tuple[GatewayConfig, dict[str, Pool]]:
    """The replayed config with each pool's measured throughput, and --gpus applied."""
    local = [p for p in cfg.providers if p.gpu is not None]
    sized = None
    if s.gpus is not None:
        named = [p for p in local if s.gpu_provider in (None, p.name)]
        if len(named) != 1:
            raise ConfigError(
                "--gpus: "
                + (
                    f"say which pool with --gpu-provider ({', '.join(p.name for p in local)})"
                    if named
                    else "the config has no self-hosted provider (a `gpu:` section) "
                    + (f"named {s.gpu_provider!r}" if s.gpu_provider else "")
                )
            )
        sized = named[0].name
    pools, providers = {}, []
    for p in cfg.providers:
        if p.gpu is not None:
            tps, source = measured[p.name]
            count = s.gpus if p.name == sized and s.gpus is not None else p.gpu.count
            per_gpu = tps / p.gpu.count
            pools[p.name] = Pool(
                p.name, count, per_gpu * count, Decimal(str(p.gpu.hourly_usd)), source
            )
            # the amortised $/token is the same at any count: hourly × n / (per-GPU tps × n)
            gpu = p.gpu.model_copy(
                update={
                    "count": max(count, 1),
                    "throughput_tokens_per_s": float(per_gpu * max(count, 1)),
                }
            )
            p = p.model_copy(update={"gpu": gpu})
        providers.append(p)
    return cfg.model_copy(update={"providers": tuple(providers)}), pools


def replay_plans(cfg: GatewayConfig) -> dict[str, Plan]:
    prices = build_price_table(cfg)
    cands: dict[str, Candidate] = {}
    for m in cfg.models:
        provider = cfg.provider(m.provider)
        price = model_price(m, cfg, prices)
        tiered = (
            model_tiered_price(m.name, cfg, prices)
            if price.source == "table"
            else TieredPrice(price)
        )
        cands[m.name] = Candidate(
            Target(m.name, m.target_model, provider, price, m),
            tiered,
            m,
            operations(provider.kind),
            provider.name if provider.gpu is not None else None,
        )
    plans = {name: Plan(name, "ordered", (c,)) for name, c in cands.items()}
    for r in cfg.routes:
        slo = r.slo.ttft_p95_ms / 1000 if r.slo.ttft_p95_ms else None
        plans[r.name] = Plan(
            r.name, r.policy, tuple(cands[c] for c in r.candidates), slo, r.local_cost_mode
        )
    return plans


async def _replay(engine: AsyncEngine, config: GatewayConfig, s: Scenario) -> WhatIfReport:
    replayed = load_config(s.policy) if s.policy is not None else config
    rcfg, pools = sized_pools(replayed, s, await _measured(engine, replayed))
    plans = replay_plans(rcfg)
    floors = tier_floors(c.price for p in plans.values() for c in p.candidates)
    slices = await load_slices(engine, Query(s.period, s.group_by, floors, by_minute=True))
    groups = Groups(s.group_by)
    name_of = served_names(config)
    out = Replayer(plans, pools, groups, floors, name_of, s.output_ratio).run(slices)
    extra = list(REPLAY_NOTES)
    if out.kept:
        kept = ", ".join(f"{n} ({c} requests)" for n, c in sorted(out.kept.items()))
        extra.append(f"Not served by the replayed config, so kept as recorded: {kept}.")
    # the hours that have passed (a period runs to the end of the current hour by default)
    end = min(s.until, max(s.since, datetime.now(UTC)))
    hours = Decimal((end - s.since).total_seconds()) / 3600
    actual_pools = {p.name: p.gpu for p in config.providers if p.gpu is not None}
    actual_gpus = sum(g.count for g in actual_pools.values())
    fleet = Fleet(
        hours=hours,
        actual_gpus=actual_gpus,
        whatif_gpus=sum(p.gpus for p in pools.values()),
        actual_gpu_usd=sum(
            (Decimal(str(g.hourly_usd)) * g.count * hours for g in actual_pools.values()), ZERO
        ),
        whatif_gpu_usd=sum((p.hourly_usd * p.gpus * hours for p in pools.values()), ZERO),
        actual_api_usd=sum((x.actual_usd for x in slices if x.provider not in actual_pools), ZERO),
        whatif_api_usd=out.api_whatif_usd,
    )
    reports = [
        PoolReport(n, p.gpus, p.per_minute, p.capacity_source, out.pools[n])
        for n, p in pools.items()
    ]
    return _report(s, groups, _notes(s, extra), pools=reports, spills=out.spills, fleet=fleet)
