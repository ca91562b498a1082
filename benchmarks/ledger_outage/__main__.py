"""The ledger under a database outage and a kill -9, for each durability mode, in one run.

    python -m benchmarks.ledger_outage [--modes async,journal,sync] [--rate 200]
        [--steady 5] [--outage 20] [--kill-at 15] [--after 5] [--closed-loop 5]
        [--concurrency 32] [--prompt-kb 0] [--no-outage-too] [--pg-dsn DSN] [--out FILE]

For each mode: a fresh PostgreSQL database (created on the machine's server, dropped after),
reached by the gateway only through a TCP proxy on loopback that this script cuts — the
server itself is never stopped. Steady load at `--rate` (latency percentiles: the cost of
`sync` against `async`, same run, same machine), an optional closed-loop phase
(throughput), then the database is cut, the gateway SIGKILLed `--kill-at` s into the outage,
the database restored at `--outage` s, the gateway restarted on the same journal, more load,
and every answered request looked up in the ledger. `--no-outage-too` adds the same kill
without an outage. Everything is on 127.0.0.1 and every phase has a fixed duration.
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
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common.procs import Proc, free_port, gateway_cmd
from benchmarks.ledger_outage.scenario import Result, Settings, run


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ledger_outage")
    p.add_argument("--modes", default="async,journal,sync")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    p.add_argument("--steady", type=float, default=5.0, help="seconds of load before the cut")
    p.add_argument("--outage", type=float, default=20.0, help="seconds the database is cut")
    p.add_argument("--kill-at", type=float, default=15.0, help="SIGKILL this far into it")
    p.add_argument("--after", type=float, default=5.0, help="seconds of load after restart")
    p.add_argument("--closed-loop", type=float, default=5.0, help="seconds; 0 to skip")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--prompt-kb", type=float, default=0.0)
    p.add_argument("--no-outage-too", action="store_true", help="also kill -9 with no outage")
    p.add_argument(
        "--pg-dsn",
        default=os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
        help="admin DSN: where the scratch databases are created",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON results (default: a temp dir)")
    return p.parse_args(argv)


def scenarios(a: argparse.Namespace) -> list[Settings]:
    out = []
    for mode in a.modes.split(","):
        common: dict[str, Any] = dict(
            mode=mode,
            rate=a.rate,
            steady_s=a.steady,
            after_s=a.after,
            concurrency=a.concurrency,
            prompt_kb=a.prompt_kb,
        )
        out.append(
            Settings(**common, outage_s=a.outage, kill_at_s=a.kill_at, closed_loop_s=a.closed_loop)
        )
        if a.no_outage_too:
            out.append(Settings(**common, outage_s=0.0, kill_at_s=a.kill_at / 3))
    return out


def row(r: Result) -> str:
    s, lat = r.settings, r.steady_latency
    kind = f"outage {s['outage_s']:g}s" if s["outage_s"] else "no outage"
    within = "" if r.lost_within_ms is None else f" (all within {r.lost_within_ms:.0f} ms)"
    return (
        f"{s['mode']:<8} {kind:<12} p50 {lat.get('p50_ms', 0):6.2f} "
        f"p99 {lat.get('p99_ms', 0):6.2f} ms"
        f"  rps {r.closed_loop_rps or 0:7.1f}  answered before kill {r.answered_before_kill:5d}"
        f"  journal at kill {r.journal_rows_at_kill or 0:5d}  lost {r.lost:3d}{within}"
        f"  replay {r.replay_s}s  rss {r.rss_mib}"
    )


async def main(a: argparse.Namespace) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="gw-ledger-outage-"))
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = await asyncio.to_thread(
        Proc,
        gateway_cmd("simulate", "--port", str(sim_port), "--profile", "instant"),
        f"{sim_url}/health",
        work / "sim.log",
    )
    results = []
    try:
        for i, s in enumerate(scenarios(a)):
            r = await run(s, a.pg_dsn, sim_url, work / f"{i}-{s.mode}")
            print(row(r), flush=True)
            results.append(r)
    finally:
        await asyncio.to_thread(sim.stop)
    out = a.out or work / "results.json"
    out.write_text(
        json.dumps(
            {
                "command": shlex.join(
                    [sys.executable, "-m", "benchmarks.ledger_outage", *sys.argv[1:]]
                ),
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": platform.python_version(),
                "machine": f"{os.cpu_count()} cpu, {platform.machine()}",
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"results: {out}")
    return results


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
