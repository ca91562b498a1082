"""The gwbench run: the gateway beside the Python floor and LiteLLM, same run.

    python -m benchmarks.perf [--gwbench ../shared/bench/gwbench] [--quick] [--no-litellm]

Runs the shared gwbench harness (nginx zero-delay mock, wrk, delayed Python mock, interleaved
direct/proxy runs, medians of repeats; see its README) over: the aiohttp floor proxy with 1 and
2 workers, LiteLLM's proxy (installed by the harness in its own throwaway venv, never a project
dependency), and the gateway with its production path on — SQLite ledger, PostgreSQL ledger,
and SQLite with 2 workers. Then it checks the performance issue's targets against the floor
measured in the same run, prints the harness's tables plus the verdicts, and writes
`bench-results/perf.json`. Lost ledger rows per load point are measured by the other run of
this program, `python -m benchmarks.overhead` (`--database-url` for PostgreSQL).

The harness lives outside this repository (`../shared/bench/gwbench`, read-only) and measures
with its own clients (wrk and its `ttft_client.py`); this module only drives it and checks its
JSON, so its figures follow the harness's definitions, not `benchmarks.common`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def gateway_target(
    name: str, database_url: str, workers: int, python: str = sys.executable
) -> dict[str, Any]:
    gw = f"{python} -m gateway"
    return {
        "name": name,
        "notes": f"the gateway ({python}): {workers} worker(s), ledger "
        f"{database_url.split(':')[0]}, metrics on, one model gpt-4o-mini (kind openai) "
        "at the mock",
        "cmd": [
            "cat > {workdir}/gw.yaml <<'YAML'",
            f"database_url: {database_url}",
            "log_level: warning",
            "providers:",
            "  - name: mock",
            "    kind: openai",
            "    api_base: {upstream}",
            "    api_key: sk-bench",
            "models:",
            "  - name: gpt-4o-mini",
            "    provider: mock",
            "YAML",
            f"exec {gw} serve --config {{workdir}}/gw.yaml --host 127.0.0.1 --port {{port}} "
            f"--workers {workers}",
        ],
        "env": {"GATEWAY_DATABASE_URL": ""},
        "ready_path": "/health",
        "ready_timeout": 60,
    }


def _pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def make_pg_database(python: str = sys.executable) -> str:
    name = f"gwbench_{uuid.uuid4().hex[:8]}"
    _pg(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    # the interpreter's own gateway migrates it: a baseline checkout has an older schema
    code = "import sys; from gateway.ledger.migrate import upgrade; upgrade(sys.argv[1])"
    # run from the checkout's root: `python -c` puts the working directory first on sys.path
    subprocess.run([python, "-c", code, url], check=True, cwd=Path(python).parents[2])
    return url


def evaluate(results: dict[str, dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    """The performance issue's targets, each against figures from this run."""
    checks: list[dict[str, Any]] = []

    def ns(name: str, conc: int) -> dict[str, Any]:
        found: dict[str, Any] = results[name]["phases"]["nonstream_zero_delay"][str(conc)]
        return found

    def st(name: str, conc: int) -> dict[str, Any] | None:
        found: dict[str, Any] | None = results[name]["phases"]["stream_delayed"].get(str(conc))
        return found

    def check(what: str, value: float, target: str, ok: bool) -> None:
        checks.append({"target": what, "value": round(value, 3), "goal": target, "ok": ok})

    floor50 = ns(ref, 50)["proxy"]["rps"]
    for name in [n for n in results if n.startswith(("gateway", "old"))]:
        if "nonstream_zero_delay" not in results[name]["phases"]:
            check(f"{name}: ran", 0, "started and measured", False)
            continue
        p50 = ns(name, 50)["proxy"]["rps"]
        w2 = name.endswith("w2")
        check(
            f"{name}: req/s at c=50",
            p50,
            ">= 3000" if w2 else ">= 2000",
            p50 >= (3000 if w2 else 2000),
        )
        if not w2:
            check(f"{name}: req/s at c=50 / floor", p50 / floor50, ">= 0.65", p50 / floor50 >= 0.65)
            tail, floor_tail = ns(name, 10)["proxy"]["p99_ms"], ns(ref, 10)["proxy"]["p99_ms"]
            check(
                f"{name}: p99 ms at c=10 (floor {floor_tail:.2f})",
                tail,
                f"<= {floor_tail + 3:.2f}",
                tail <= floor_tail + 3,
            )
            for conc, goal in ((1, 0.6), (10, 3.0)):
                x = ns(name, conc)
                added = x["proxy"]["p50_ms"] - x["direct"]["p50_ms"]
                check(f"{name}: added p50 ms at c={conc}", added, f"<= {goal}", added <= goal)
            for conc, goal in ((10, 1.5), (50, 3.0)):
                sx, f = st(name, conc), st(ref, conc)
                if sx is None or f is None:
                    continue
                added = sx["proxy"]["ttft_p50_ms"] - sx["direct"]["ttft_p50_ms"]
                floor_added = f["proxy"]["ttft_p50_ms"] - f["direct"]["ttft_p50_ms"]
                ok = added <= goal or (conc == 50 and floor_added > 1 and added <= floor_added + 2)
                check(
                    f"{name}: added TTFT p50 ms at c={conc} (floor {floor_added:.2f})",
                    added,
                    f"<= {goal}",
                    ok,
                )
                check(
                    f"{name}: usage chunk at c={conc}",
                    sx["proxy"]["usage_frac"],
                    "== 1.0",
                    sx["proxy"]["usage_frac"] == 1.0,
                )
        if not w2:  # with workers the harness sums the tree; benchmarks.overhead splits it
            rss = results[name]["peak_rss_mb"]
            check(f"{name}: peak RSS MiB", rss, "<= 120", rss <= 120)
        cold = results[name]["cold_start_median_s"]
        check(f"{name}: cold start s", cold, "<= 1.5", cold <= 1.5)
        errors = sum(
            v["proxy"]["errors_total"]
            for v in results[name]["phases"]["nonstream_zero_delay"].values()
        )
        check(f"{name}: errors", errors, "== 0", errors == 0)
    return checks


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.perf", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--gwbench", type=Path, default=ROOT.parent / "shared" / "bench" / "gwbench")
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "gwbench")
    ap.add_argument(
        "--quick", action="store_true", help="one repeat, short phases (~1 min a target)"
    )
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-workers", action="store_true", help="leave out the 2-worker targets")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of the gateway (with its own .venv) to run beside this one, "
        "as targets old-sqlite-w1 and old-pg-w1: the old and the new code in the same run",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-results/perf.json"))
    args = ap.parse_args()
    g = args.gwbench.resolve()
    env = {**os.environ, "GWBENCH_HOME": str(args.home)}
    env.pop("GATEWAY_DATABASE_URL", None)
    subprocess.run(
        [str(g / "setup.sh"), *([] if args.no_litellm else ["--litellm"])], env=env, check=True
    )
    tdir = Path(tempfile.mkdtemp(prefix="gw-perf-targets-"))
    targets = [g / "targets" / "floor-aiohttp-w1.json"]
    if not args.no_workers:
        targets.append(g / "targets" / "floor-aiohttp-w2.json")
    if not args.no_litellm:
        targets.append(g / "targets" / "litellm-w1.json")
    sqlite = "sqlite+aiosqlite:///{workdir}/ledger.db"
    gw_targets = [gateway_target("gateway-sqlite-w1", sqlite, 1)]
    if not args.no_workers:
        gw_targets.append(gateway_target("gateway-sqlite-w2", sqlite, 2))
    old_py = str(args.baseline.resolve() / ".venv" / "bin" / "python") if args.baseline else None
    if old_py:
        gw_targets.append(gateway_target("old-sqlite-w1", sqlite, 1, old_py))
    pg_urls: list[str] = []
    if not args.no_postgres:
        pg_urls.append(make_pg_database())
        gw_targets.insert(1, gateway_target("gateway-pg-w1", pg_urls[-1], 1))
        if old_py:
            # a database of its own, migrated by the old code's own alembic chain
            pg_urls.append(make_pg_database(old_py))
            gw_targets.append(gateway_target("old-pg-w1", pg_urls[-1], 1, old_py))
    for t in gw_targets:
        path = tdir / f"{t['name']}.json"
        path.write_text(json.dumps(t, indent=1))
        targets.append(path)
    settings = (
        [
            "--conc",
            "1,10,50",
            "--duration",
            "4",
            "--direct-duration",
            "2",
            "--repeats",
            "1",
            "--stream-conc",
            "10,50",
            "--stream-duration",
            "3",
            "--stream-repeats",
            "1",
            "--delayed-conc",
            "",
        ]
        if args.quick
        else [
            "--conc",
            "1,10,50",
            "--duration",
            "6",
            "--direct-duration",
            "3",
            "--repeats",
            "3",
            "--stream-conc",
            "1,10,50",
            "--stream-duration",
            "3",
            "--stream-repeats",
            "3",
            "--delayed-conc",
            "50",
        ]
    )
    out_dir = args.out.resolve().parent / "gwbench"
    for old in out_dir.glob("*.json"):
        old.unlink()
    cmd = [
        str(g / "run.sh"),
        *[a for t in targets for a in ("--target-file", str(t))],
        *settings,
        "--ref",
        "floor-aiohttp-w1",
        "--out-dir",
        str(out_dir),
    ]
    try:
        subprocess.run(cmd, env=env, check=True)
    finally:
        for url in pg_urls:
            _pg(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    results = {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}
    checks = evaluate(results, "floor-aiohttp-w1")
    print("\nTargets (performance issue), from this run:")
    for c in checks:
        print(f"  {'PASS' if c['ok'] else 'FAIL'}  {c['target']}: {c['value']} (goal {c['goal']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": shlex.join(["python", "-m", "benchmarks.perf", *sys.argv[1:]]),
                "gwbench_command": cmd,
                "checks": checks,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out} (per-target files in {out_dir})")
