"""Soak the gateway: many mixed requests at a steady rate, then memory, descriptors, ledger.

    python -m benchmarks.soak [--requests 200000] [--rate 100] [--warmup N]
        [--disconnect-every 50] [--no-faults] [--database postgresql|sqlite]
        [--pg-dsn DSN] [--keep-db] [--out FILE]

Starts the simulator (`instant` profile; the gateway's providers use its `realistic-small`
upstream) and `gateway serve` as processes on 127.0.0.1, with a fresh ledger database (a
scratch PostgreSQL database, dropped afterwards, or a SQLite file). Requests cycle through
chat, /v1/messages and /v1/responses, the four provider kinds, streamed and not, each with a
system prompt of its own; one in `--disconnect-every` is abandoned by the client; the
simulator injects 500, 429 and 503 answers, hung connections, cut and malformed streams and
in-stream errors on ~3% of requests. Prints the gateway's RSS and open descriptors after the
warm-up and at the end, and ledger rows against requests (by status). Exits 1 when a check
fails: RSS growth ≥ 10% (judged from 20,000 requests after the warm-up), descriptors growing,
a request without an answer, or rows ≠ requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.ledger_outage.scenario import create_database, drop_database
from benchmarks.soak.run import Report, Settings, soak


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    p.add_argument("--warmup", type=int, default=0, help="requests (default: 10%%, ≤ 20,000)")
    p.add_argument("--disconnect-every", type=int, default=50, help="0: no client leaves")
    p.add_argument("--max-in-flight", type=int, default=256)
    p.add_argument("--no-faults", action="store_true")
    p.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument(
        "--pg-dsn",
        default=os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
        help="admin DSN: where the scratch database is created",
    )
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="JSON report")
    return p.parse_args(argv)


async def main(argv: list[str]) -> int:
    a = parse(argv)
    s = Settings(
        requests=a.requests,
        rate=a.rate,
        warmup=a.warmup,
        disconnect_every=a.disconnect_every,
        max_in_flight=a.max_in_flight,
        faults=not a.no_faults,
    )
    work = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    print(f"[soak] work directory {work}", flush=True)
    if a.database == "sqlite":
        from gateway.ledger.migrate import upgrade

        url = f"sqlite+aiosqlite:///{work / 'ledger.db'}"
        await asyncio.to_thread(upgrade, url)
    else:
        url = await create_database(a.pg_dsn)
    try:
        report = await soak(s, work, url)
    finally:
        if a.database == "postgresql" and not a.keep_db:
            await drop_database(a.pg_dsn, url)
    show(report)
    out = a.out or work / "soak.json"
    doc = {
        "command": shlex.join([sys.executable, "-m", "benchmarks.soak", *argv]),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "database": a.database,
        **asdict(report),
    }
    out.write_text(json.dumps(doc, indent=2))
    print(f"[soak] report: {out}")
    return 0 if report.ok else 1


def show(r: Report) -> None:
    print(f"requests sent         {r.sent:,} in {r.wall_s:,.0f} s ({r.achieved_rate} req/s)")
    print(f"answered              {sum(r.answered.values()):,}  {r.answered}")
    print(f"left by the client    {r.disconnected:,}")
    print(f"no answer             {sum(r.unanswered.values())}  {r.unanswered}")
    print(f"ledger rows           {r.rows:,}  {r.rows_by_status}")
    print(
        f"answered, no row      {r.answered_without_row}   row status ≠ answer: {r.status_mismatch}"
    )
    judged = "" if r.memory_judged else "  (not judged: too few requests after the warm-up)"
    print(
        f"RSS                   {r.rss_warmup_mib} MiB after warm-up → {r.rss_end_mib} MiB at the "
        f"end ({r.rss_growth:+.1%}), max {r.rss_max_mib}{judged}"
    )
    print(
        f"open descriptors      {r.fds_warmup} after warm-up → {r.fds_end} at the end, "
        f"{r.fds_idle_after} idle after; range {r.fds_min_max}"
    )
    print(f"ledger                {r.ledger_at_end}")
    print("PASS" if r.ok else "FAIL: " + "; ".join(r.failures))


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
