"""Fill a PostgreSQL ledger with realistic `requests` rows, by COPY, for the finance reports'
scale figures (README: Finance).

    python -m benchmarks.finance.fill --dsn postgresql://postgres@127.0.0.1/finance_scale \\
        --rows 10000000 --days 90

The database must exist; it is migrated to the newest schema first. Rows are spread over the
`days` before now with a working-day rhythm (busier in office hours and on weekdays), in time
order as an append-only ledger grows; teams, keys, models and providers (one self-hosted on a
GPU) follow skewed shares; ~2 % are upstream errors and ~1 % refusals (no provider, no
attempt). Costs are priced per token exactly like the gateway does, with cache rates. The
generator is seeded: the same arguments give the same rows.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

CHUNK = 200_000
PICO = 10**12


@dataclass(frozen=True)
class FillModel:
    name: str  # the upstream model id the ledger records
    provider: str
    endpoint: str
    # picodollars per token: input, output, cache read, cache write
    rates: tuple[int, int, int, int]
    share: float
    latency_ms: float  # median full-request latency


def _per_mtok(usd: float) -> int:
    return round(usd * PICO / 1_000_000)


def _rates(i: float, o: float, cr: float, cw: float) -> tuple[int, int, int, int]:
    return (_per_mtok(i), _per_mtok(o), _per_mtok(cr), _per_mtok(cw))


# the local model's rate is its GPU's amortised price (ECONOMICS.md: an H100 at ~$2.49/h
# serving ~1,500 tokens/s ≈ $0.46 per 1M tokens)
MODELS = (
    FillModel("llama-3.1-8b", "local-vllm", "chat", _rates(0.46, 0.46, 0.46, 0.46), 0.34, 900),
    FillModel("gpt-4o-mini", "openai", "chat", _rates(0.15, 0.60, 0.075, 0.15), 0.22, 1400),
    FillModel("gpt-4o", "openai", "chat", _rates(2.5, 10.0, 1.25, 2.5), 0.08, 2600),
    FillModel("claude-haiku", "anthropic", "messages", _rates(0.8, 4.0, 0.08, 1.0), 0.14, 1600),
    FillModel("claude-sonnet", "anthropic", "messages", _rates(3.0, 15.0, 0.3, 3.75), 0.07, 3800),
    FillModel("gemini-flash", "gemini", "chat", _rates(0.1, 0.4, 0.025, 0.1), 0.10, 1100),
    FillModel("text-embedding-3-small", "openai", "embeddings", _rates(0.02, 0, 0, 0), 0.05, 120),
)
ROUTES = ("chat-default", "chat-cheap")  # requested names that are routes, not models
TEAMS = ("search", "support", "research", "growth", "platform", "finance", "legal", "mobile")
KEYS_PER_TEAM = 4
UNATTRIBUTED = 0.08  # requests with no key (auth off for an internal caller)
ERRORS = ((429, "rate_limit_error"), (500, "api_error"), (502, "upstream_error"))
REFUSALS = ((400, "invalid_request_error"), (413, "request_too_large"), (404, "model_not_found"))

COLUMNS = (
    "id",
    "created_at",
    "endpoint",
    "requested_model",
    "provider",
    "upstream_model",
    "stream",
    "status_code",
    "error_type",
    "prompt_tokens",
    "completion_tokens",
    "cached_prompt_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "input_cost_usd",
    "output_cost_usd",
    "cost_usd",
    "usage_estimated",
    "ttft_ms",
    "latency_ms",
    "upstream_request_id",
    "route_reason",
    "attempts",
    "api_key_id",
    "team",
)


def _usd(pico: int) -> str:
    return f"{pico // PICO}.{pico % PICO:012d}"


def _times(rng: np.random.Generator, n: int, start: float, seconds: float) -> np.ndarray:
    """`n` sorted UNIX times with a weekly and daily rhythm (rejection sampling)."""
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        t = start + rng.random(2 * (n - have) + 1000) * seconds
        hour = (t % 86400) / 3600
        weekday = ((t // 86400) + 3) % 7 < 5  # 1970-01-01 was a Thursday
        w = (0.25 + 0.75 * np.exp(-(((hour - 14.0) / 4.0) ** 2))) * np.where(weekday, 1.0, 0.45)
        keep = t[rng.random(t.size) < w]
        out.append(keep)
        have += keep.size
    return np.sort(np.concatenate(out)[:n])


def rows(n: int, days: int, seed: int = 7, end: datetime | None = None) -> Iterator[bytes]:
    """The rows as CSV, in chunks of `CHUNK`."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=days)).timestamp()
    times = _times(rng, n, start, days * 86400.0)
    keys = [f"key_{t}_{k}" for t in TEAMS for k in range(KEYS_PER_TEAM)]
    key_team = {k: k.split("_")[1] for k in keys}
    key_w = np.array([1.0 / (i + 1) ** 0.8 for i in range(len(keys))])
    model_w = np.array([m.share for m in MODELS])
    for lo in range(0, n, CHUNK):
        yield _chunk(rng, lo, times[lo : lo + CHUNK], keys, key_team, key_w, model_w)


def _chunk(
    rng: np.random.Generator,
    first: int,
    times: np.ndarray,
    keys: list[str],
    key_team: dict[str, str],
    key_w: np.ndarray,
    model_w: np.ndarray,
) -> bytes:
    m = times.size
    model_ix = rng.choice(len(MODELS), m, p=model_w / model_w.sum())
    key_ix = rng.choice(len(keys), m, p=key_w / key_w.sum())
    attributed = rng.random(m) >= UNATTRIBUTED
    via_route = rng.random(m) < 0.3
    stream = rng.random(m) < 0.6
    fate = rng.random(m)  # < 0.01 refused, < 0.03 upstream error
    prompt = np.maximum(1, rng.lognormal(math.log(900), 0.9, m)).astype(np.int64)
    completion = np.maximum(1, rng.lognormal(math.log(220), 0.8, m)).astype(np.int64)
    cached_share = np.where(rng.random(m) < 0.35, rng.random(m) * 0.8, 0.0)
    write_share = np.where(rng.random(m) < 0.05, rng.random(m) * 0.3, 0.0)
    reasoning_share = np.where(rng.random(m) < 0.1, rng.random(m) * 0.5, 0.0)
    lat_jitter = rng.lognormal(0.0, 0.45, m)
    ttft_share = rng.uniform(0.08, 0.35, m)
    attempts = np.where(rng.random(m) < 0.03, 2, 1)
    out: list[str] = []
    for j in range(m):
        mod = MODELS[model_ix[j]]
        key = keys[key_ix[j]] if attributed[j] else None
        team = key_team[key] if key else None
        requested = ROUTES[j % 2] if via_route[j] and mod.endpoint == "chat" else mod.name
        created = datetime.fromtimestamp(float(times[j]), UTC).isoformat()
        rid = f"fill-{first + j:011d}"
        f = fate[j]
        if f < 0.01:  # refused before any upstream call
            status, err = REFUSALS[j % 3]
            lat = round(float(lat_jitter[j]) * 2.0, 3)
            out.append(
                f"{rid},{created},{mod.endpoint},{requested},,,f,{status},{err},0,0,0,0,0,"
                f"0.000000000000,0.000000000000,0.000000000000,f,,{lat},,,0,{key or ''},"
                f"{team or ''}\n"
            )
            continue
        is_stream = bool(stream[j]) and mod.endpoint != "embeddings"
        lat = round(mod.latency_ms * float(lat_jitter[j]), 3)
        ttft = f"{round(lat * float(ttft_share[j]), 3)}" if is_stream else ""
        if f < 0.03:
            status, err = ERRORS[j % 3]
            out.append(
                f"{rid},{created},{mod.endpoint},{requested},{mod.provider},{mod.name},"
                f"{'t' if is_stream else 'f'},{status},{err},0,0,0,0,0,0.000000000000,"
                f"0.000000000000,0.000000000000,f,,{lat},,,{attempts[j]},{key or ''},"
                f"{team or ''}\n"
            )
            continue
        p = int(prompt[j])
        c = 0 if mod.endpoint == "embeddings" else int(completion[j])
        cached = int(p * cached_share[j])
        written = min(p - cached, int(p * write_share[j]))
        reasoning = int(c * reasoning_share[j])
        ri, ro, rc, rw = mod.rates
        inp = (p - cached - written) * ri + cached * rc + written * rw
        outp = c * ro
        out.append(
            f"{rid},{created},{mod.endpoint},{requested},{mod.provider},{mod.name},"
            f"{'t' if is_stream else 'f'},200,,{p},{c},{cached},{written},{reasoning},"
            f"{_usd(inp)},{_usd(outp)},{_usd(inp + outp)},f,{ttft},{lat},up-{first + j:x},,"
            f"{attempts[j]},{key or ''},{team or ''}\n"
        )
    return "".join(out).encode()


async def fill(dsn: str, n: int, days: int, seed: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        done = 0
        began = time.monotonic()

        async def source() -> AsyncIterator[bytes]:
            nonlocal done
            for chunk in rows(n, days, seed):
                done += chunk.count(b"\n")
                yield chunk
                rate = done / (time.monotonic() - began)
                print(f"{done:,} rows ({rate:,.0f}/s)", file=sys.stderr, flush=True)

        await conn.copy_to_table(
            "requests", source=source(), columns=COLUMNS, format="csv", null=""
        )
        await conn.execute("ANALYZE requests")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dsn", required=True, help="postgresql://… of an existing database")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-migrate", action="store_true", help="the schema is already there")
    args = ap.parse_args(argv)
    dsn = args.dsn.replace("postgresql+asyncpg://", "postgresql://")
    if not args.no_migrate:
        from gateway.ledger.migrate import upgrade

        upgrade(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    began = time.monotonic()
    asyncio.run(fill(dsn, args.rows, args.days, args.seed))
    print(f"filled {args.rows:,} rows in {time.monotonic() - began:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
