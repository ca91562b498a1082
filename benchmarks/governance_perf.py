"""What governance costs: the gateway with auth, rate limits and budgets on, beside itself with
governance off and the Python floor, in one gwbench run.

    python -m benchmarks.governance_perf [--quick] [--gwbench ../shared/bench/gwbench]
        [--redis-url redis://127.0.0.1:6379/0] [--out bench-results/governance_perf.json]

Targets (1 worker, SQLite ledger, one model at the harness's zero-delay mock):
    floor-aiohttp-w1       the harness's 40-line aiohttp proxy: the reference
    gateway-gov-off        no master key: no auth, no limits, no budgets; access log off
    gateway-gov-on         master key; a virtual key (Bearer) whose key and team both have RPM,
                           TPM, daily and monthly budgets (set high enough never to refuse),
                           counted in Redis on loopback; access log off
    gateway-gov-on-log     the same with the JSON access log on stdout
Each governance request runs the whole path: key lookup, one Redis script call admitting it
(rate windows of both scopes, both budgets, the reservation of its maximum cost) and one
settling it after the response. Targets: gateway-gov-on's requests/s at 50 concurrent ≥ 0.55
of the floor's, its added p50 at 1 concurrent ≤ 0.8 ms — both from this run.

The targets' start command seeds the key with a known secret into the target's fresh ledger
(`python -m benchmarks.governance_perf seed`), so gwbench can send it as a static header.
The Redis keys live under a prefix of this run's own and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MASTER = "sk-bench-master-key-0123456789"
TEAM = "bench"
# never reached in a run, so every request runs every check and is admitted
LIMITS_RPM, LIMITS_TPM = 100_000_000, 10_000_000_000
BUDGET_DAY, BUDGET_MONTH = Decimal(1_000_000), Decimal(9_000_000)  # the most a budget may be


def target(
    name: str, *, governance: bool, access_log: str, redis: str, prefix: str, secret: str
) -> dict[str, Any]:
    lines = [
        "cat > {workdir}/gw.yaml <<'YAML'",
        "database_url: sqlite+aiosqlite:///{workdir}/ledger.db",
        "log_level: warning",
        f"logging: {{access_log: {access_log}}}",
        "providers:",
        "  - name: mock",
        "    kind: openai",
        "    api_base: {upstream}",
        "    api_key: sk-bench",
        "models:",
        "  - name: gpt-4o-mini",
        "    provider: mock",
    ]
    if governance:
        # this run's own key prefix: the default `gw:` could share counters with anything else
        lines += [
            f"auth: {{master_key: {MASTER}}}",
            f"redis_url: {redis}",
            f"governance: {{redis_key_prefix: '{prefix}'}}",
        ]
    lines.append("YAML")
    py = sys.executable
    if governance:
        lines.append(
            f"{py} -m benchmarks.governance_perf seed --config {{workdir}}/gw.yaml "
            f"--secret {secret}"
        )
    lines.append(
        f"exec {py} -m gateway serve --config {{workdir}}/gw.yaml --host 127.0.0.1 --port {{port}}"
    )
    return {
        "name": name,
        "notes": f"the gateway, 1 worker, SQLite ledger, governance {'on' if governance else 'off'}"
        f", access log {access_log}",
        "cmd": lines,
        "env": {"GATEWAY_DATABASE_URL": "", "PYTHONPATH": str(ROOT)},
        "headers": [f"Authorization: Bearer {secret}"] if governance else [],
        "ready_path": "/health",
        "ready_timeout": 60,
    }


def seed(config_path: Path, secret: str) -> None:
    """The bench team and key (idempotent: the harness starts a target more than once)."""
    from gateway.config import load_config
    from gateway.governance import store
    from gateway.governance.keys import display_prefix, hash_secret_from, key_hash
    from gateway.governance.records import ApiKey, Limits, Team
    from gateway.ledger.db import create_engine
    from gateway.runner import prepare_database

    config = load_config(config_path)
    assert config.auth.master_key is not None
    prepare_database(config)
    hashed = key_hash(secret, hash_secret_from(config.auth.master_key, config.auth.key_hash_secret))
    limits = Limits(LIMITS_RPM, LIMITS_TPM, BUDGET_DAY, BUDGET_MONTH)
    now = datetime.now(UTC)

    async def go() -> None:
        engine = create_engine(config.database_url)
        try:
            if await store.get_team(engine, TEAM) is None:
                await store.insert_team(engine, Team(TEAM, limits, now, now))
            if await store.key_by_hash(engine, hashed) is None:
                key = ApiKey(
                    "key_bench",
                    hashed,
                    display_prefix(secret),
                    "bench",
                    TEAM,
                    None,
                    limits,
                    None,
                    None,
                    now,
                    now,
                )
                await store.insert_key(engine, key)
        finally:
            await engine.dispose()

    asyncio.run(go())


def redis_state(url: str, prefix: str, delete: bool) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        spent = client.hget(f"{prefix}s:t:{TEAM}", "d")
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if delete:
            for k in keys:
                client.delete(k)
        return {"keys": len(keys), "team_spend_nanodollars_today": int(spent or 0)}
    finally:
        client.close()


def evaluate(results: dict[str, dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    def ns(name: str, conc: int) -> dict[str, Any]:
        found: dict[str, Any] = results[name]["phases"]["nonstream_zero_delay"][str(conc)]
        return found

    checks: list[dict[str, Any]] = []
    floor50 = ns(ref, 50)["proxy"]["rps"]
    for name in [n for n in results if n.startswith("gateway")]:
        rps = ns(name, 50)["proxy"]["rps"]
        added = ns(name, 1)["proxy"]["p50_ms"] - ns(name, 1)["direct"]["p50_ms"]
        errors = sum(
            v["proxy"]["errors_total"]
            for v in results[name]["phases"]["nonstream_zero_delay"].values()
        )
        gov = name.startswith("gateway-gov-on")
        checks += [
            {"target": f"{name}: req/s at c=50", "value": round(rps), "goal": "-", "ok": True},
            {
                "target": f"{name}: req/s at c=50 / floor",
                "value": round(rps / floor50, 3),
                "goal": ">= 0.55" if gov else "-",
                "ok": rps / floor50 >= 0.55 or not gov,
            },
            {
                "target": f"{name}: added p50 ms at c=1",
                "value": round(added, 3),
                "goal": "<= 0.8" if gov else "-",
                "ok": added <= 0.8 or not gov,
            },
            {"target": f"{name}: errors", "value": errors, "goal": "== 0", "ok": errors == 0},
        ]
    return checks


def run(args: argparse.Namespace) -> None:
    g = args.gwbench.resolve()
    env = {**os.environ, "GWBENCH_HOME": str(args.home)}
    env.pop("GATEWAY_DATABASE_URL", None)
    subprocess.run([str(g / "setup.sh")], env=env, check=True)
    from gateway.governance.keys import new_secret

    secret = new_secret()
    prefix = f"gwbench-{uuid.uuid4().hex[:8]}:"
    tdir = Path(tempfile.mkdtemp(prefix="gw-govperf-"))
    files = [g / "targets" / "floor-aiohttp-w1.json"]
    common = {"redis": args.redis_url, "prefix": prefix, "secret": secret}
    for spec in (
        target("gateway-gov-off", governance=False, access_log="off", **common),
        target("gateway-gov-on", governance=True, access_log="off", **common),
        target("gateway-gov-on-log", governance=True, access_log="json", **common),
    ):
        if spec["name"] in args.skip:
            continue
        path = tdir / f"{spec['name']}.json"
        path.write_text(json.dumps(spec, indent=1))
        files.append(path)
    settings = (
        ["--conc", "1,10,50", "--duration", "4", "--direct-duration", "2", "--repeats", "1"]
        if args.quick
        else ["--conc", "1,10,50", "--duration", "6", "--direct-duration", "3", "--repeats", "3"]
    )
    out_dir = args.out.resolve().parent / "gwbench-governance"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.json"):
        old.unlink()
    cmd = [
        str(g / "run.sh"),
        *[a for f in files for a in ("--target-file", str(f))],
        *settings,
        "--stream-conc",
        "",
        "--delayed-conc",
        "",
        "--ref",
        "floor-aiohttp-w1",
        "--out-dir",
        str(out_dir),
    ]
    try:
        subprocess.run(cmd, env=env, check=True, cwd=ROOT)
    finally:
        counted = redis_state(args.redis_url, prefix, delete=True)
    results = {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}
    for r in results.values():  # the throwaway bench key: not kept in the results
        r.pop("headers_template", None)
    checks = evaluate(results, "floor-aiohttp-w1")
    print(f"\nRedis under {prefix}: {counted} (governance did count) — deleted")
    print("\nTargets (governance issue), from this run:")
    for c in checks:
        print(f"  {'PASS' if c['ok'] else 'FAIL'}  {c['target']}: {c['value']} (goal {c['goal']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "gwbench_command": cmd,
                "redis": counted,
                "checks": checks,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command")
    s = sub.add_parser("seed", help="(used by the targets) the bench team and key")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--secret", required=True)
    ap.add_argument("--gwbench", type=Path, default=ROOT.parent / "shared" / "bench" / "gwbench")
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "gwbench")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--quick", action="store_true", help="one repeat, short phases")
    ap.add_argument("--skip", action="append", default=[], help="a gateway target to leave out")
    ap.add_argument("--out", type=Path, default=Path("bench-results/governance_perf.json"))
    args = ap.parse_args()
    if args.command == "seed":
        seed(args.config, args.secret)
    else:
        run(args)


if __name__ == "__main__":
    main()
