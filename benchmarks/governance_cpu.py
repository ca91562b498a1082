"""What governance costs per request, in CPU time — a figure a busy shared machine leaves
standing where requests/s and latency do not.

    python -m benchmarks.governance_cpu [--rounds 4] [--seconds 5] [--redis-url URL]

Starts the project's simulator (`instant`) and two gateways on it, one with governance off
and one with auth, rate limits and budgets on (Redis on loopback, SQLite ledgers, access logs
off), then runs wrk against them in interleaved rounds — off, on, off, on… at 1 and at 50
concurrent — so both see the same machine. For each run it reads the gateway's own CPU time
(/proc/PID/stat) and Redis's (INFO cpu), and reports the medians: requests/s, p50 latency,
gateway CPU µs a request and Redis CPU µs a request. Needs wrk (gwbench's setup.sh installs
it). Everything listens on 127.0.0.1 and stops at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MASTER = "sk-bench-master-key-0123456789"
WRK_LUA = """
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something short."}]}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_URL"}
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready, timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{args[:4]} did not start: see {log}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


def wrk(url: str, conc: int, seconds: int, lua: Path, key: str | None) -> dict[str, float]:
    env = {**os.environ, **({"BENCH_KEY": key} if key else {})}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": n,
        "rps": n / seconds,
        "p50_ms": float(p50.group(1)) * scale,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def config(
    workdir: Path, name: str, upstream: str, governed: bool, redis: str, prefix: str
) -> Path:
    lines = [
        f"database_url: sqlite+aiosqlite:///{workdir}/{name}.db",
        "log_level: warning",
        "logging: {access_log: 'off'}",
        "providers:",
        f"  - {{name: sim, kind: openai, api_base: '{upstream}', api_key: sk-bench}}",
        "models:",
        "  - {name: gpt-4o-mini, provider: sim}",
    ]
    if governed:
        lines += [
            f"auth: {{master_key: {MASTER}}}",
            f"redis_url: {redis}",
            f"governance: {{redis_key_prefix: '{prefix}'}}",
        ]
    path = workdir / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--out", type=Path, default=Path("bench-results/governance_cpu.json"))
    args = ap.parse_args()
    from gateway.governance.keys import new_secret

    workdir = Path(tempfile.mkdtemp(prefix="gw-govcpu-"))
    lua = workdir / "post.lua"
    lua.write_text(WRK_LUA)
    prefix, secret = f"gwbench-{uuid.uuid4().hex[:8]}:", new_secret()
    py = sys.executable
    sim_port, off_port, on_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{sim_port}/instant/v1"
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        procs.append(
            start(
                [py, "-m", "gateway", "simulate", "--port", str(sim_port)],
                workdir / "sim.log",
                f"http://127.0.0.1:{sim_port}/health",
            )
        )
        off = config(workdir, "off", upstream, False, args.redis_url, prefix)
        on = config(workdir, "on", upstream, True, args.redis_url, prefix)
        subprocess.run(
            [
                py,
                "-m",
                "benchmarks.governance_perf",
                "seed",
                "--config",
                str(on),
                "--secret",
                secret,
            ],
            check=True,
            cwd=ROOT,
        )
        targets = {}
        for name, cfg, port in (("off", off, off_port), ("on", on, on_port)):
            proc = start(
                [py, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(port)],
                workdir / f"{name}.log",
                f"http://127.0.0.1:{port}/health",
            )
            procs.append(proc)
            targets[name] = (proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions")
        for name, (_, url) in targets.items():  # warm-up
            wrk(url, 10, 2, lua, secret if name == "on" else None)
        for _ in range(args.rounds):
            for conc in (1, 50):
                for name, (pid, url) in targets.items():
                    cpu0, r0 = cpu_seconds(pid), redis_cpu(args.redis_url)
                    result = wrk(url, conc, args.seconds, lua, secret if name == "on" else None)
                    cpu1, r1 = cpu_seconds(pid), redis_cpu(args.redis_url)
                    n = result["requests"]
                    result["gateway_cpu_us_per_request"] = (cpu1 - cpu0) / n * 1e6
                    result["redis_cpu_us_per_request"] = (r1 - r0) / n * 1e6
                    runs.setdefault((name, conc), []).append(result)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        import redis

        client = redis.Redis.from_url(args.redis_url)
        for key in client.scan_iter(match=prefix + "*", count=500):
            client.delete(key)
        client.close()
    summary: dict[str, Any] = {}
    print(
        f"\nmedians of {args.rounds} interleaved rounds, {args.seconds:g} s each "
        f"(load average at the end: {os.getloadavg()[0]:.1f})"
    )
    print(
        "| governance | conc | req/s | p50 ms | gateway CPU µs/req | Redis CPU µs/req | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, conc), rs in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        summary[f"{name}-c{conc}"] = {"median": med, "runs": rs}
        print(
            f"| {name} | {conc} | {med['rps']:.0f} | {med['p50_ms']:.2f} | "
            f"{med['gateway_cpu_us_per_request']:.0f} | {med['redis_cpu_us_per_request']:.0f} | "
            f"{sum(r['non_2xx'] for r in rs)} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "summary": summary}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
