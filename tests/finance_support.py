"""A ledger seeded with five requests whose totals are worked out by hand (tests/finance).

Config: `local` (self-hosted: 2 GPUs at $2.00/h, 1,000 tokens/s) serving `llama`, and `api`
serving `mini` ($1 / $2 per 1M in / out, $0.50 cached) and the reference model `ref`
($4 / $8 per 1M, $1 cached read, $5 cache write).

    row  UTC time          endpoint  route  provider model    team key status prompt cached wr compl. reas. cost      lat ttft
    r1   2026-11-02 10:15  chat      auto   local    llama-up a    k1  200    1000   200    100 500    50    0.001     100 20
    r2   2026-11-02 10:45  chat      mini   api      mini-up  a    k1  200    2000   1000   0   1000   0     0.0035    400 -
    r3   2026-11-02 23:30  messages  llama  local    llama-up b    k2  200    3000   0      0   1000   0     0.002     250 50
    r4   2026-11-03 01:00  chat      auto   api      mini-up  -    -   502    0      0      0   0      0     0         1000 -
    r5   2026-11-03 02:00  chat      bad    -        -        b    k2  413    0      0      0   0      0     0         1   -

r2's cost: 1000 uncached × $1/1M + 1000 cached × $0.50/1M + 1000 out × $2/1M = $0.0035.
At the reference: r1 = 700 × 4 + 200 × 1 + 100 × 5 + 500 × 8 = 7,500 µ$ = $0.0075;
r3 = 3000 × 4 + 1000 × 8 = $0.020. Reference total = API actual 0.0035 + 0.0075 + 0.020 =
$0.031; actual total $0.0065; saving $0.0245.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from gateway.config import GatewayConfig, parse_config
from gateway.ledger.db import create_engine
from gateway.ledger.tables import requests_table


def finance_config(db_url: str, **extra: Any) -> GatewayConfig:
    raw: dict[str, Any] = {
        "database_url": db_url,
        "providers": [
            {
                "name": "local",
                "kind": "vllm",
                "api_base": "http://127.0.0.1:9/v1",
                "gpu": {
                    "name": "H100",
                    "count": 2,
                    "hourly_usd": 2.0,
                    "throughput_tokens_per_s": 1000,
                },
            },
            {"name": "api", "kind": "openai", "api_key": "sk-unused"},
        ],
        "models": [
            {"name": "llama", "provider": "local", "upstream_model": "llama-up"},
            {
                "name": "mini",
                "provider": "api",
                "upstream_model": "mini-up",
                "price": {"input_per_mtok": 1, "output_per_mtok": 2, "cache_read_per_mtok": 0.5},
            },
            {
                "name": "ref",
                "provider": "api",
                "price": {
                    "input_per_mtok": 4,
                    "output_per_mtok": 8,
                    "cache_read_per_mtok": 1,
                    "cache_write_per_mtok": 5,
                },
            },
        ],
        "finance": {"reference_model": "ref"},
    }
    raw.update(extra)
    return parse_config(raw, source="test", environ={})


def _row(
    rid: str,
    at: str,
    endpoint: str,
    route: str,
    provider: str | None,
    model: str | None,
    team: str | None,
    key: str | None,
    status: int,
    tokens: tuple[int, int, int, int, int],
    cost: str,
    latency: float,
    ttft: float | None,
) -> dict[str, Any]:
    prompt, cached, written, completion, reasoning = tokens
    return {
        "id": rid,
        "created_at": datetime.fromisoformat(at).replace(tzinfo=UTC),
        "endpoint": endpoint,
        "requested_model": route,
        "provider": provider,
        "upstream_model": model,
        "stream": ttft is not None,
        "status_code": status,
        "error_type": None if status < 400 else "error",
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
        "cache_write_tokens": written,
        "completion_tokens": completion,
        "reasoning_tokens": reasoning,
        "input_cost_usd": Decimal(cost),
        "output_cost_usd": Decimal(0),
        "cost_usd": Decimal(cost),
        "usage_estimated": False,
        "ttft_ms": ttft,
        "latency_ms": latency,
        "attempts": 0 if provider is None else 1,
        "api_key_id": key,
        "team": team,
    }


ROWS = [
    _row("r1", "2026-11-02 10:15", "chat", "auto", "local", "llama-up", "a", "k1", 200,
         (1000, 200, 100, 500, 50), "0.001", 100, 20),
    _row("r2", "2026-11-02 10:45", "chat", "mini", "api", "mini-up", "a", "k1", 200,
         (2000, 1000, 0, 1000, 0), "0.0035", 400, None),
    _row("r3", "2026-11-02 23:30", "messages", "llama", "local", "llama-up", "b", "k2", 200,
         (3000, 0, 0, 1000, 0), "0.002", 250, 50),
    _row("r4", "2026-11-03 01:00", "chat", "auto", "api", "mini-up", None, None, 502,
         (0, 0, 0, 0, 0), "0", 1000, None),
    _row("r5", "2026-11-03 02:00", "chat", "bad", None, None, "b", "k2", 413,
         (0, 0, 0, 0, 0), "0", 1, None),
]  # fmt: skip


async def seed(db_url: str, rows: list[dict[str, Any]] = ROWS) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(requests_table), rows)
    finally:
        await engine.dispose()
