"""What `/v1/responses` costs over `/v1/chat/completions` for the same request, non-streamed, at
1 concurrent, against the zero-delay simulator (`instant` profile).

    python -m benchmarks.responses_overhead [--requests 400] [--rounds 7] [--database-url URL]

Method: the simulator and the gateway (SQLite ledger in a temporary directory unless
`--database-url`, full production path: ledger rows, metrics, the response store) run as child
processes on 127.0.0.1. One closed-loop client on a keep-alive socket sends the same question
as a chat completion, as a Response (`store` left at its default, true: the store's write is
part of what is measured) and as a Response with `store: false`, all to a model the gateway
reaches through chat completions (the upstream does the same work for all three). The three
take turns request by request (so a load change on a shared machine hits all three alike),
`--requests` of each a round after a warm-up round, `--rounds` rounds; each round's p50 per
kind is taken and the figure is the median over the rounds, with the median of the
per-round differences. Self-contained on purpose (its own process and client helpers):
benchmarks/ is being reorganised. Stops by itself; loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

QUESTION = "Summarise why an LLM gateway should add almost no latency."
BODIES: dict[str, dict[str, Any]] = {
    "chat": {"model": "bench", "messages": [{"role": "user", "content": QUESTION}]},
    "responses": {"model": "bench", "input": QUESTION},
    "responses_nostore": {"model": "bench", "input": QUESTION, "store": False},
}
PATHS = {"chat": "/v1/chat/completions"} | {
    k: "/v1/responses" for k in ("responses", "responses_nostore")
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{args[2:4]} exited; see {log}")
        try:
            with urllib.request.urlopen(ready, timeout=1):
                return p
        except OSError:
            time.sleep(0.05)
    stop(p)
    raise RuntimeError(f"{ready} not ready; see {log}")


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)  # graceful: the gateway flushes its ledger and store
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


class Client:
    """HTTP/1.1 POSTs on one keep-alive socket: the least client work between two requests."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        header, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        return status

    def interleaved(self, n: int) -> dict[str, list[float]]:
        """`n` requests of each kind, one of each in turn (so load drift hits all alike)."""
        sent = {k: (PATHS[k], json.dumps(b).encode()) for k, b in BODIES.items()}
        out: dict[str, list[float]] = {k: [] for k in BODIES}
        for _ in range(n):
            for kind, (path, body) in sent.items():
                t = time.perf_counter()
                status = self.post(path, body)
                out[kind].append((time.perf_counter() - t) * 1000)
                if status != 200:
                    raise RuntimeError(f"{kind}: HTTP {status}")
        return out


def config(sim: str, database_url: str) -> str:
    return f"""database_url: {database_url}
log_level: warning
providers:
  - {{name: sim, kind: openai, api_base: "{sim}/instant/v1", api_key: sk-bench}}
models:
  - {{name: bench, provider: sim, upstream_model: gpt-4o-mini}}
"""


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gw-responses-"))
    sim_port, gw_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    db = args.database_url or f"sqlite+aiosqlite:///{work / 'ledger.db'}"
    (work / "gw.yaml").write_text(config(sim_url, db))
    py = [sys.executable, "-m", "gateway"]
    if args.database_url:
        subprocess.run([*py, "db", "upgrade", "--config", str(work / "gw.yaml")], check=True)
    sim = start([*py, "simulate", "--port", str(sim_port), "--profile", "instant"],
                f"{sim_url}/health", work / "sim.log")  # fmt: skip
    gw = start([*py, "serve", "--config", str(work / "gw.yaml"), "--port", str(gw_port)],
               f"http://127.0.0.1:{gw_port}/health", work / "gw.log")  # fmt: skip
    p50: dict[str, list[float]] = {k: [] for k in BODIES}
    try:
        client = Client(gw_port)
        client.interleaved(args.requests)  # warm-up: pools, caches, the first writes
        for rnd in range(args.rounds):
            for kind, times in client.interleaved(args.requests).items():
                p50[kind].append(statistics.median(times))
            print(f"  round {rnd}: " + "  ".join(f"{k} {v[-1]:.3f} ms" for k, v in p50.items()))
    finally:
        stop(gw)
        stop(sim)
    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "requests_per_block": args.requests,
        "rounds": args.rounds,
        "database": "postgresql" if args.database_url else "sqlite",
        "p50_ms": {k: statistics.median(v) for k, v in p50.items()},
        "rounds_p50_ms": p50,
    }
    for kind in ("responses", "responses_nostore"):
        diffs = [r - c for r, c in zip(p50[kind], p50["chat"], strict=True)]
        result[f"added_p50_ms_{kind}"] = statistics.median(diffs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind a round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    result = run(args)
    p = result["p50_ms"]
    print(
        f"p50 chat {p['chat']:.3f} ms, responses {p['responses']:.3f} ms "
        f"(+{result['added_p50_ms_responses']:.3f}), responses store:false "
        f"{p['responses_nostore']:.3f} ms (+{result['added_p50_ms_responses_nostore']:.3f})"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
