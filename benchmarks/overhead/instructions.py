"""Instructions a request: the gateway's CPU cost counted by callgrind, which — unlike time —
does not change with the machine's load, so two versions compare exactly on a busy machine.

    python -m benchmarks.instructions [--baseline PATH] [--requests 1500] [--concurrency 10]
                                      [--governance] [--stream]

Each version (this checkout, and `--baseline`: another checkout with its own `.venv`) serves
under `valgrind --tool=callgrind` with its production path on (SQLite ledger, metrics, the
access log), against the built-in simulator's instant profile. After a warm-up the counters
are zeroed (`callgrind_control -z`), `--requests` chat requests are sent at `--concurrency`,
and the counters are dumped (`callgrind_control -d`): the dump's total, divided by the
requests, is the figure. Work the request leaves behind (its ledger row, metrics, the access
log line) falls inside the window for all but the last batch, so the figure includes it.
`--governance` turns auth, rate limits and budgets on (a seeded key with every limit, Redis at
`--redis-url`), as `benchmarks.governance_perf` does. Needs Debian's `valgrind`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common.procs import Proc, free_port, gateway_cmd

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def config(path: Path, sim: str, database: Path, governance: str | None) -> None:
    text = f"""database_url: sqlite+aiosqlite:///{database}
log_level: warning
providers:
  - name: sim
    kind: openai
    api_base: {sim}/instant/v1
    api_key: sk-bench
models:
  - name: gpt-4o-mini
    provider: sim
"""
    if governance is not None:
        text += governance
    path.write_text(text)


async def load(url: str, n: int, conc: int, headers: dict[str, str], stream: bool) -> int:
    body = {**BODY, "stream": True} if stream else BODY
    failed = 0
    left = n

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            async with session.post(url, json=body, headers=headers) as r:
                await r.read()
                failed += r.status != 200

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(conc)))
    return failed


def total_instructions(dump: Path) -> int:
    """The `totals:` line of a callgrind dump (its `summary:` line repeats it: count one)."""
    for line in dump.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def measure(
    tree: Path, python: str, args: argparse.Namespace, work: Path, sim: str
) -> dict[str, Any]:
    work.mkdir(parents=True)
    cfg = work / "gw.yaml"
    governance = None
    headers: dict[str, str] = {}
    if args.governance:
        from gateway.governance.keys import new_secret

        secret, prefix = new_secret(), f"gwinstr-{uuid.uuid4().hex[:8]}:"
        governance = (
            "auth: {master_key: sk-bench-master-key-0123456789}\n"
            f"redis_url: {args.redis_url}\n"
            f"governance: {{redis_key_prefix: '{prefix}'}}\n"
        )
        headers["Authorization"] = f"Bearer {secret}"
    config(cfg, sim, work / "ledger.db", governance)
    env = {"GATEWAY_DATABASE_URL": "", "PYTHONPATH": str(tree)}
    if args.governance:
        seed = [python, "-m", "benchmarks.governance_perf", "seed", "--config", str(cfg)]
        subprocess.run([*seed, "--secret", secret], check=True, cwd=tree, env={**os.environ, **env})
    port = free_port()
    out = work / "callgrind.out"
    gw = Proc(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            python,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(cfg),
            "--port",
            str(port),
        ],
        f"http://127.0.0.1:{port}/health",
        work / "gw.log",
        env=env,
        timeout_s=300,
        cwd=tree,  # `python -m` puts the working directory first on sys.path, before PYTHONPATH
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        asyncio.run(load(url, args.warmup, args.concurrency, headers, args.stream))
        subprocess.run(["callgrind_control", "-z", str(gw.p.pid)], check=True, capture_output=True)
        failed = asyncio.run(load(url, args.requests, args.concurrency, headers, args.stream))
        subprocess.run(["callgrind_control", "-d", str(gw.p.pid)], check=True, capture_output=True)
    finally:
        gw.stop()
    # the dump `-d` asked for is the run's first (`.1`); the one at exit has no suffix
    total = total_instructions(work / "callgrind.out.1")
    return {
        "tree": str(tree),
        "requests": args.requests,
        "failed": failed,
        "instructions": total,
        "per_request": round(total / args.requests),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    ap.add_argument("--baseline", type=Path, help="another checkout (with its own .venv)")
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--stream", action="store_true", help="streamed requests")
    ap.add_argument("--governance", action="store_true")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--out", type=Path, default=Path("bench-results/instructions.json"))
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("needs valgrind (Debian: apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="gw-instr-"))
    sim_port = free_port()
    sim = Proc(
        gateway_cmd("simulate", "--port", str(sim_port), "--profile", "instant"),
        f"http://127.0.0.1:{sim_port}/health",
        work / "sim.log",
    )
    results = []
    try:
        trees = [(ROOT, sys.executable)]
        if args.baseline:
            base = args.baseline.resolve()
            trees.append((base, str(base / ".venv" / "bin" / "python")))
        for i, (tree, python) in enumerate(trees):
            results.append(measure(tree, python, args, work / f"t{i}", sim.ready_url[:-7]))
    finally:
        sim.stop()
    print(f"{'tree':<40} {'instructions/request':>22} {'failed':>7}")
    for r in results:
        print(f"{r['tree']:<40} {r['per_request']:>22,} {r['failed']:>7}")
    if len(results) == 2:
        print(f"this / baseline: {results[0]['per_request'] / results[1]['per_request']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": sys.argv[1:], "results": results}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
