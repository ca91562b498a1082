"""Time `gateway whatif` on a filled ledger (benchmarks/finance/fill.py) and show the plan of
its main query, for the scale figures in the README.

    python -m benchmarks.finance.whatif_bench --dsn postgresql://postgres@127.0.0.1/finance_scale \\
        --days 30 --runs 5 -- --model claude-haiku

Everything after `--` is passed to `gateway whatif` (with `--since`, `--config` and
`--format json` added). Each run is a fresh process, as a person would run it; the figure is
the median wall time. The plan is `EXPLAIN (ANALYZE, BUFFERS)` of the aggregate the command
runs (`gateway.finance.whatif_query.statement`), with the same period and grouping.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CONFIG = Path(__file__).with_name("config.yaml")


def _flag(args: list[str], name: str, default: str) -> str:
    return args[args.index(name) + 1] if name in args else default


async def explain(url: str, since: str, args: list[str]) -> tuple[str, list[str]]:
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from gateway.config import load_config
    from gateway.finance.period import parse_group_by, parse_period
    from gateway.finance.prices import model_tiered_price
    from gateway.finance.whatif_query import Query, statement
    from gateway.ledger.db import create_engine
    from gateway.pricing.table import build_price_table

    cfg = load_config(CONFIG, {"GATEWAY_DATABASE_URL": url})
    floors: tuple[int, ...] = ()
    if "--model" in args:
        floors = model_tiered_price(
            args[args.index("--model") + 1], cfg, build_price_table(cfg)
        ).thresholds
    q = Query(
        parse_period(since, None, _flag(args, "--tz", "UTC")),
        parse_group_by(_flag(args, "--group-by", "model")),
        floors,
        by_minute="--gpus" in args or "--policy" in args,
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(
        statement(q, "postgresql").compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    )
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            plan = [
                str(r[0]) for r in await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))
            ]
    finally:
        await engine.dispose()
    return sql, plan


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ours, passed = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dsn", required=True, help="postgresql://… of a filled database")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(ours)
    url = args.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    since = (datetime.now(UTC) - timedelta(days=args.days)).date().isoformat()
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "whatif",
        "--config",
        str(CONFIG),
        "--since",
        since,
        "--format",
        "json",
        *passed,
    ]
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    times = []
    for i in range(args.runs):
        began = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            sys.exit(f"run {i + 1} failed: {done.stderr}")
        print(f"run {i + 1}: {times[-1]:.2f} s", file=sys.stderr)
    print("command:", " ".join(cmd[1:]))
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(f"median of {args.runs}: {statistics.median(times):.2f} s (runs: {runs})")
    sql, plan = asyncio.run(explain(url, since, passed))
    print("main query:", sql, sep="\n")
    print("\n".join(plan))


if __name__ == "__main__":
    main()
