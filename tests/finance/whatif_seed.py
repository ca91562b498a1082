"""A small ledger with hand-computed what-if answers (tests/finance/test_whatif*.py).

Prices (USD per 1M tokens): `cheap` 1 in / 2 out / 0.5 cache read; `dear` 3 / 15 / 0.3 read /
3.75 write; `local-m` on one GPU at $3.60/h and 50 tokens/s: 3.6 / 3600 / 50 = $2e-5 a token
(prompt and output alike), 3,000 tokens a minute. Route `auto`: local-first over
local-m, cheap, dear.

Rows on 2026-11-02 (UTC), with the cost the gateway would have recorded:

    R1 10:00:10 auto→cheap    prompt 1000 (400 cached), out 200       team a   $0.0012
    R2 10:00:20 auto→local-m  prompt 3800, out 1000                   team b   $0.096
    R3 10:01:05 dear (pinned) prompt 2000 (1000 cached, 500 written),
                               out 100                                  team a   $0.005175
    R4 10:01:30 refused (no provider, 400)                                       $0
    R6 10:02:00 dear (pinned) prompt 1000, out 100                      team b   $0.0045
    R5 2026-11-05 auto→cheap  prompt 1000, out 1000 (outside the period)         $0.003
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, insert

from gateway.config import GatewayConfig, parse_config
from gateway.ledger.db import create_engine
from gateway.ledger.tables import (
    bench_runs_table,
    gpu_calibrations_table,
    requests_table,
    usage_hourly_table,
)

SINCE = datetime(2026, 11, 2, tzinfo=UTC)
UNTIL = datetime(2026, 11, 3, tzinfo=UTC)


def config_dict(db_url: str, *, routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "database_url": db_url,
        "providers": [
            {
                "name": "local",
                "kind": "vllm",
                "api_base": "http://127.0.0.1:9/v1",
                "gpu": {
                    "name": "H100",
                    "count": 1,
                    "hourly_usd": 3.6,
                    "throughput_tokens_per_s": 50,
                },
            },
            {"name": "api", "kind": "openai", "api_base": "http://127.0.0.1:9/v1"},
            {"name": "claude", "kind": "anthropic", "api_base": "http://127.0.0.1:9"},
        ],
        "models": [
            {"name": "local-m", "provider": "local", "upstream_model": "org/local-m"},
            {
                "name": "cheap",
                "provider": "api",
                "price": {"input_per_mtok": 1, "output_per_mtok": 2, "cache_read_per_mtok": 0.5},
            },
            {
                "name": "dear",
                "provider": "claude",
                "upstream_model": "dear-2026",
                "price": {
                    "input_per_mtok": 3,
                    "output_per_mtok": 15,
                    "cache_read_per_mtok": 0.3,
                    "cache_write_per_mtok": 3.75,
                },
            },
        ],
        "routes": routes
        if routes is not None
        else [
            {"name": "auto", "policy": "local-first", "candidates": ["local-m", "cheap", "dear"]}
        ],
    }


def make_config(db_url: str, **kw: Any) -> GatewayConfig:
    return parse_config(config_dict(db_url, **kw), source="test", environ={})


def write_config(path: Path, db_url: str, **kw: Any) -> Path:
    path.write_text(yaml.safe_dump(config_dict(db_url, **kw)), encoding="utf-8")
    return path


def _row(
    rid: str,
    at: datetime,
    requested: str,
    provider: str | None,
    upstream: str | None,
    *,
    prompt: int = 0,
    cached: int = 0,
    written: int = 0,
    out: int = 0,
    cost: str = "0",
    team: str | None = None,
    status: int = 200,
) -> dict[str, Any]:
    return {
        "id": rid,
        "created_at": at,
        "endpoint": "chat",
        "requested_model": requested,
        "provider": provider,
        "upstream_model": upstream,
        "stream": False,
        "status_code": status,
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "cached_prompt_tokens": cached,
        "cache_write_tokens": written,
        "reasoning_tokens": 0,
        "input_cost_usd": Decimal(cost),
        "output_cost_usd": Decimal(0),
        "cost_usd": Decimal(cost),
        "latency_ms": 100.0,
        "attempts": 1 if provider else 0,
        "team": team,
    }


def at(h: int, m: int, s: int, day: int = 2) -> datetime:
    return datetime(2026, 11, day, h, m, s, tzinfo=UTC)


ROWS = [
    _row(
        "r1",
        at(10, 0, 10),
        "auto",
        "api",
        "cheap",
        prompt=1000,
        cached=400,
        out=200,
        cost="0.0012",
        team="a",
    ),
    _row(
        "r2",
        at(10, 0, 20),
        "auto",
        "local",
        "org/local-m",
        prompt=3800,
        out=1000,
        cost="0.096",
        team="b",
    ),
    _row(
        "r3",
        at(10, 1, 5),
        "dear",
        "claude",
        "dear-2026",
        prompt=2000,
        cached=1000,
        written=500,
        out=100,
        cost="0.005175",
        team="a",
    ),
    _row("r4", at(10, 1, 30), "nope", None, None, status=400),
    _row(
        "r6",
        at(10, 2, 0),
        "dear",
        "claude",
        "dear-2026",
        prompt=1000,
        out=100,
        cost="0.0045",
        team="b",
    ),
    _row("r5", at(9, 0, 0, day=5), "auto", "api", "cheap", prompt=1000, out=1000, cost="0.003"),
]


def seed(db_url: str, *, calibrated_tps: float | None = None) -> None:
    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                # PostgreSQL's test database is shared by the session: only `requests` is emptied
                # for each test, not its rollup (which only PostgreSQL has)
                if engine.dialect.name == "postgresql":
                    await conn.execute(delete(usage_hourly_table))
                await conn.execute(delete(gpu_calibrations_table))
                await conn.execute(delete(bench_runs_table))
                await conn.execute(insert(requests_table), ROWS)
                if calibrated_tps is not None:
                    await conn.execute(
                        insert(bench_runs_table).values(
                            id="run1",
                            created_at=SINCE,
                            command="test",
                            target_url="http://127.0.0.1:9",
                            workload="chat",
                            settings={},
                            results={},
                            versions={},
                        )
                    )
                    await conn.execute(
                        insert(gpu_calibrations_table).values(
                            created_at=SINCE,
                            provider="local",
                            run_id="run1",
                            max_concurrency=8,
                            output_tokens_per_s=calibrated_tps / 2,
                            total_tokens_per_s=calibrated_tps,
                            slo={},
                        )
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())
