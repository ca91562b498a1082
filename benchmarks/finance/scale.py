"""Time the usage report on a filled ledger (benchmarks/finance/fill.py), with EXPLAIN ANALYZE
of its main query.

    python -m benchmarks.finance.scale --config benchmarks/finance/config.yaml --days 30

Each grouping's report (the whole of `usage_report`: SQL, folding, savings, percentiles) runs
`--runs` times; the median and the spread are printed, then the plan of the query it sent.
The period is the `--days` whole UTC days before today.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from gateway.config import load_config
from gateway.finance.period import parse_group_by, parse_period
from gateway.finance.report import usage_report
from gateway.finance.source import REPORT_WORK_MEM, rollup_query, uses_rollup
from gateway.ledger.db import create_engine
from gateway.pricing.table import build_price_table


async def run(config_path: Path, days: int, runs: int, groupings: list[str]) -> None:
    config = load_config(config_path)
    prices = build_price_table(config)
    engine = create_engine(config.database_url)
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=days)).isoformat()
    until = (today - timedelta(days=1)).isoformat()
    period = parse_period(since, until, "UTC")
    print(f"period {period.since.isoformat()} .. {period.until.isoformat()}")
    try:
        for grouping in groupings:
            groups = parse_group_by(grouping)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                rep = await usage_report(engine, config, prices, period, groups)
                times.append(time.perf_counter() - t0)
            print(
                f"\n== group by {grouping}: {len(rep['rows'])} rows, "
                f"{rep['totals']['requests']:,} requests, source {rep['source']}; "
                f"median {statistics.median(times) * 1000:.0f} ms of {runs} "
                f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
            )
            if uses_rollup(engine.dialect.name, groups, period):
                sql = rollup_query(groups, period).compile(
                    dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                    compile_kwargs={"literal_binds": True},
                )
                async with engine.connect() as conn:
                    await conn.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
                    plan = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                    print("\n".join(r[0] for r in plan))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("benchmarks/finance/config.yaml"))
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--group-by", action="append", help="a grouping (repeatable)")
    args = ap.parse_args(argv)
    groupings = args.group_by or ["day,model", "team,model"]
    asyncio.run(run(args.config, args.days, args.runs, groupings))


if __name__ == "__main__":
    main()
