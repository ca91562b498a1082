"""Measured GPU capacity per provider: `gateway bench calibrate` writes it, start-up reads it.

A calibration says how much a self-hosted provider serves within its SLO, from a load-benchmark
run (`bench_runs`): the highest concurrency whose requests met the SLO, and the output and total
(input + output) tokens per second measured there. The router uses the newest one to override
`gpu.throughput_tokens_per_s` and `gpu.max_concurrency` from the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ledger.tables import gpu_calibrations_table as t


@dataclass(frozen=True, slots=True)
class Calibration:
    provider: str
    run_id: str
    max_concurrency: int | None
    output_tokens_per_s: float
    total_tokens_per_s: float
    slo: dict[str, Any] = field(default_factory=dict)  # e.g. {"ttft_ms": 500, "tpot_ms": 50}
    created_at: datetime | None = None


async def latest_calibration(engine: AsyncEngine, provider: str) -> Calibration | None:
    """The newest calibration of `provider`, or None when it was never calibrated."""
    query = (
        select(t)
        .where(t.c.provider == provider)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    m = row._mapping
    return Calibration(
        provider=m["provider"],
        run_id=m["run_id"],
        max_concurrency=m["max_concurrency"],
        output_tokens_per_s=float(m["output_tokens_per_s"]),
        total_tokens_per_s=float(m["total_tokens_per_s"]),
        slo=dict(m["slo"] or {}),
        created_at=m["created_at"],
    )


async def record_calibration(engine: AsyncEngine, cal: Calibration) -> Calibration:
    """Insert `cal` (stamped now unless it has a time) and return it as stored."""
    created = cal.created_at or datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(t).values(
                created_at=created,
                provider=cal.provider,
                run_id=cal.run_id,
                max_concurrency=cal.max_concurrency,
                output_tokens_per_s=cal.output_tokens_per_s,
                total_tokens_per_s=cal.total_tokens_per_s,
                slo=cal.slo,
            )
        )
    return Calibration(
        cal.provider,
        cal.run_id,
        cal.max_concurrency,
        cal.output_tokens_per_s,
        cal.total_tokens_per_s,
        dict(cal.slo),
        created,
    )
