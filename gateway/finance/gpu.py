"""The GPU fleet's true cost over a period, next to the ledger's amortised view and the APIs.

A self-hosted pool costs `count × hourly_usd` for every hour of the period that has passed,
busy or idle. Divided by the tokens it served (input + output) that is its effective price per
1M tokens; the ledger's own view is the amortised price it recorded per request (the pool's
price spread over its calibrated throughput, so it assumes full use). Utilisation is tokens
served ÷ (throughput × seconds), throughput being the newest `gateway bench calibrate` result
(`gpu_calibrations`) or else the config's `gpu.throughput_tokens_per_s`; also per hour of day
in the report's zone, so idle capacity shows where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import GatewayConfig, ProviderConfig
from gateway.core import Price
from gateway.finance.period import Period
from gateway.finance.report import usd
from gateway.finance.source import Fetched, fetch, utc_hour
from gateway.ledger.calibration import latest_calibration

MTOK = Decimal(1_000_000)
RATE_QUANTUM = Decimal("1e-6")


def _per_mtok(usd_amount: Decimal, tokens: int) -> str | None:
    if tokens <= 0:
        return None
    return format((usd_amount / tokens * MTOK).quantize(RATE_QUANTUM), "f")


def _elapsed_hours_by_hour_of_day(period: Period, now: datetime) -> list[int]:
    """How many whole hours of the period, up to `now`, fall on each local hour of day."""
    counts = [0] * 24
    t = period.since
    end = min(period.until, now)
    while t + timedelta(hours=1) <= end:
        counts[t.astimezone(period.tz).hour] += 1
        t += timedelta(hours=1)
    return counts


def _hour_of_day(fetched: Fetched, value: Any, period: Period) -> int:
    if fetched.local_time:
        return int(value.hour)
    return utc_hour(value).astimezone(period.tz).hour


async def _throughput(engine: AsyncEngine, p: ProviderConfig) -> float:
    assert p.gpu is not None
    cal = await latest_calibration(engine, p.name)
    return cal.total_tokens_per_s if cal is not None else p.gpu.throughput_tokens_per_s


async def gpu_report(
    engine: AsyncEngine,
    config: GatewayConfig,
    prices: Mapping[str, Price],
    period: Period,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    fetched = await fetch(engine, ("hour",), period)
    hours_of_day = _elapsed_hours_by_hour_of_day(period, now)
    hours = Decimal(sum(hours_of_day))
    providers = []
    for p in config.providers:
        if p.gpu is None:
            continue
        by_hour = [0] * 24
        ledger_usd = Decimal(0)
        for g in fetched.groups:
            if g.provider == p.name:
                h = _hour_of_day(fetched, g.keys[0], period)
                by_hour[h] += g.token("prompt_tokens") + g.token("completion_tokens")
                ledger_usd += g.cost_usd
        tokens = sum(by_hour)
        tps = Decimal(str(await _throughput(engine, p)))
        hourly = Decimal(str(p.gpu.hourly_usd))
        cost = hourly * p.gpu.count * hours
        capacity_per_hour = tps * 3600
        providers.append(
            {
                "provider": p.name,
                "gpu": p.gpu.name,
                "gpus": p.gpu.count,
                "hourly_usd": usd(hourly),
                "gpu_hours": float(hours * p.gpu.count),
                "cost_usd": usd(cost),
                "tokens": tokens,
                "throughput_tokens_per_s": float(tps),
                "effective_usd_per_1m": _per_mtok(cost, tokens),
                "amortised_usd_per_1m": _per_mtok(ledger_usd, tokens),
                "utilisation": _ratio(tokens, capacity_per_hour * hours),
                "by_hour": [
                    {
                        "hour": h,
                        "utilisation": _ratio(by_hour[h], capacity_per_hour * hours_of_day[h]),
                        "tokens": by_hour[h],
                    }
                    for h in range(24)
                ],
            }
        )
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "tz": str(period.tz.key),
        "providers": providers,
        "apis": _apis(config, prices),
    }


def _ratio(part: int, whole: Decimal) -> float:
    return 0.0 if whole <= 0 else round(float(Decimal(part) / whole), 6)


def _apis(config: GatewayConfig, prices: Mapping[str, Price]) -> list[dict[str, Any]]:
    out = []
    for m in config.models:
        price = prices.get(m.name)
        if config.provider(m.provider).self_hosted or price is None:
            continue
        read = price.input if price.cache_read is None else price.cache_read
        out.append(
            {
                "model": m.name,
                "provider": m.provider,
                "input_usd_per_1m": format((price.input * MTOK).normalize(), "f"),
                "output_usd_per_1m": format((price.output * MTOK).normalize(), "f"),
                "cached_input_usd_per_1m": format((read * MTOK).normalize(), "f"),
            }
        )
    return out
