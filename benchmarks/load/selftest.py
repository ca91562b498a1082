"""`gateway bench selftest`: how much load this machine's load generator can produce.

It starts the simulator's zero-delay `instant` profile as a child process on a free loopback
port (so the two do not share an event loop or a core), then drives it with the same code as
`gateway bench run`: a closed loop of non-streamed requests (req/s), and one of streamed
requests with long replies (SSE chunks/s). It reports the load generator's CPU use (of the one
core its event loop runs on) and the simulator's, so it is clear which side ran out; targets:
≥ 1,000 non-streamed requests/s and ≥ 20,000 streamed chunks/s.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.common.procs import Proc, cpu_seconds, free_port, gateway_cmd
from benchmarks.common.result import RequestInput
from benchmarks.load.loadgen import LoadShape, Window, run_fast, run_point
from benchmarks.load.metrics import summarize

TARGET_REQ_S = 1000.0
TARGET_CHUNKS_S = 20000.0


@dataclass(frozen=True)
class SelfTestResult:
    mode: str
    concurrency: int
    completed: int
    failed: int
    requests_per_s: float
    chunks_per_s: float
    client_cpu: float  # of one core
    client_lag_p99_ms: float
    server_cpu: float  # the simulator process, of one core
    target: float
    passed: bool
    saturated: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _input(url: str, stream: bool, output_tokens: int) -> RequestInput:
    body: dict[str, Any] = {
        "model": "sim-instant",
        "messages": [{"role": "user", "content": "How fast can you go?"}],
        "max_completion_tokens": output_tokens,
        "ignore_eos": True,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return RequestInput(url + "/v1/chat/completions", orjson.dumps(body), 8, output_tokens, stream)


async def _measure(
    url: str, pid: int, mode: str, concurrency: int, duration_s: float, output_tokens: int
) -> SelfTestResult:
    stream = mode == "streamed"
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        connector=connector, headers={"content-type": "application/json"}
    ) as session:
        inp = [_input(url, stream, output_tokens)]
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        run = await run_point(
            session,
            inp,
            LoadShape(concurrency=concurrency),
            Window(duration_s=duration_s, warmup_s=min(1.0, duration_s / 3)),
        )
        server_cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    s = summarize(run.results, run.duration_s)
    chunks = sum(r.chunks for r in run.results) / run.duration_s
    value = chunks if stream else s.request_throughput
    target = TARGET_CHUNKS_S if stream else TARGET_REQ_S
    return SelfTestResult(
        mode,
        concurrency,
        s.completed,
        s.failed,
        s.request_throughput,
        chunks,
        run.client.cpu_fraction,
        run.client.loop_lag_p99_ms,
        server_cpu,
        target,
        value >= target,
        run.client.saturated,
    )


def selftest(
    duration_s: float = 10.0, concurrency: int = 64, stream_output_tokens: int = 256
) -> list[SelfTestResult]:
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"gateway-bench-selftest-{port}.log"
    sim = Proc(
        gateway_cmd("simulate", "--port", str(port), "--profile", "instant"),
        f"http://127.0.0.1:{port}/health",
        log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        return [
            run_fast(_measure(url, sim.p.pid, "non-streamed", concurrency, duration_s, 16)),
            run_fast(
                _measure(
                    url, sim.p.pid, "streamed", concurrency // 2, duration_s, stream_output_tokens
                )
            ),
        ]
    finally:
        sim.stop()
