"""One soak run: the simulator and `gateway serve` as processes, a steady open-loop load of
`requests` mixed requests (mix.py) with the simulator's faults on, RSS and open descriptors
sampled as it goes, then every answered request looked up in the ledger.

Memory is judged between two samples taken under the same load: after the warm-up (when
pools, caches and the allocator have reached their working size) and at the last request.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from benchmarks.common.procs import Proc, free_port, gateway_cmd
from benchmarks.soak.client import Tally, send
from benchmarks.soak.mix import FAULTS, gateway_config, plan
from benchmarks.soak.probe import Sample, ready, sample, wait_ledger_empty
from gateway.ledger.db import create_engine
from gateway.ledger.tables import requests_table

MAX_RSS_GROWTH = 0.10
JUDGE_MEMORY_FROM = 20_000  # fewer requests after the warm-up say nothing about a leak
FD_SLACK = 16  # connections kept alive idle (the client's, the upstream pools')
SAMPLE_EVERY_S = 10.0
IDLE_S = 6.0  # after the load: upstream keep-alives (4 s) expire, so descriptors settle


@dataclass(slots=True)
class Settings:
    requests: int = 200_000
    rate: float = 100.0
    warmup: int = 0  # 0: a tenth of the requests, at most 20,000
    disconnect_every: int = 50
    max_in_flight: int = 256
    faults: bool = True

    def warmup_requests(self) -> int:
        return self.warmup or min(self.requests // 10, 20_000)


@dataclass(slots=True)
class Report:
    settings: dict[str, Any]
    wall_s: float
    achieved_rate: float
    sent: int
    answered: dict[str, int]
    disconnected: int
    unanswered: dict[str, int]
    rows: int
    rows_by_status: dict[str, int]
    answered_without_row: int
    status_mismatch: int
    rss_warmup_mib: float
    rss_end_mib: float
    rss_growth: float
    rss_max_mib: float
    fds_warmup: int
    fds_end: int
    fds_idle_after: int
    fds_min_max: tuple[int, int]
    memory_judged: bool
    ledger_at_end: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def start_processes(work: Path, database_url: str) -> tuple[Proc, Proc, str]:
    sim_port, gw_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = Proc(
        gateway_cmd("simulate", "--port", str(sim_port), "--profile", "instant"),
        f"{sim_url}/health",
        work / "simulator.log",
    )
    cfg = work / "gateway.json"
    cfg.write_text(json.dumps(gateway_config(sim_url, database_url, str(work / "journal"))))
    gw_url = f"http://127.0.0.1:{gw_port}"
    try:
        gw = Proc(
            gateway_cmd("serve", "--config", str(cfg), "--port", str(gw_port)),
            f"{gw_url}/health",
            work / "gateway.log",
            timeout_s=60,
        )
    except BaseException:
        sim.stop()
        raise
    return sim, gw, gw_url


def _post(url: str, body: object) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10):
        pass


async def drive(s: Settings, gw_url: str, pid: int, tally: Tally) -> list[Sample]:
    """The open loop: request i starts at i/rate s (later only when `max_in_flight` are
    running), whether earlier ones finished or not."""
    samples: list[Sample] = []
    tasks: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(s.max_in_flight)
    connector = aiohttp.TCPConnector(limit=s.max_in_flight, keepalive_timeout=30)
    warm = s.warmup_requests()
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            try:
                await send(session, gw_url, plan(i, s.disconnect_every), tally)
            finally:
                room.release()

        start = last_sample = time.perf_counter()
        for i in range(s.requests):
            await asyncio.sleep(max(0.0, start + i / s.rate - time.perf_counter()))
            await room.acquire()
            t = asyncio.create_task(one(i))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            now = time.perf_counter()
            if i == warm or i == s.requests - 1 or now - last_sample >= SAMPLE_EVERY_S:
                last_sample = now
                samples.append(sample(pid, i))
                _progress(samples[-1], i, now - start, tally, len(tasks))
        if tasks:
            await asyncio.wait(list(tasks), timeout=90)
    return samples


def _progress(x: Sample, i: int, elapsed: float, tally: Tally, in_flight: int) -> None:
    print(
        f"[soak] {i:>7} started  {i / max(elapsed, 1e-9):6.1f} req/s  rss {x.rss_mib:6.1f} MiB  "
        f"fds {x.fds:4}  in flight {in_flight:3}  answered {tally.answered_total}  "
        f"left {tally.disconnected}  unanswered {sum(tally.unanswered.values())}",
        flush=True,
    )


async def ledger_counts(url: str, ids: dict[str, int]) -> tuple[dict[str, int], int, int]:
    """Rows by status (and error type); answered requests with no row; non-streamed answers
    whose row has another status than the client saw."""
    engine = create_engine(url)
    t = requests_table
    try:
        async with engine.connect() as conn:
            q = select(t.c.status_code, t.c.error_type, func.count()).group_by(
                t.c.status_code, t.c.error_type
            )
            by = {
                f"{st}" + (f" {et}" if et else ""): int(n)
                for st, et, n in (await conn.execute(q)).all()
            }
            found: dict[str, int] = {}
            keys = list(ids)
            for k in range(0, len(keys), 5000):
                chunk = keys[k : k + 5000]
                rows = await conn.execute(select(t.c.id, t.c.status_code).where(t.c.id.in_(chunk)))
                found.update({str(a): int(b) for a, b in rows.all()})
    finally:
        await engine.dispose()
    missing = sum(1 for k in ids if k not in found)
    mismatch = sum(1 for k, st in ids.items() if st and k in found and found[k] != st)
    return by, missing, mismatch


async def soak(s: Settings, work: Path, database_url: str) -> Report:
    sim, gw, gw_url = start_processes(work, database_url)
    try:
        sim_url = sim.ready_url.rsplit("/health", 1)[0]
        _post(f"{sim_url}/sim/reset", {"seed": 11})
        if s.faults:
            _post(f"{sim_url}/sim/faults", {"faults": FAULTS})
        pid = gw.p.pid
        tally = Tally()
        started = time.perf_counter()
        samples = await drive(s, gw_url, pid, tally)
        wall = time.perf_counter() - started
        await asyncio.sleep(IDLE_S)
        ledger = await asyncio.to_thread(wait_ledger_empty, gw_url)
        idle = sample(pid, s.requests)
    finally:
        await asyncio.to_thread(gw.stop)  # graceful: the last rows are written
        await asyncio.to_thread(sim.stop)
    by, missing, mismatch = await ledger_counts(database_url, tally.ids)
    return judge(s, tally, samples, idle, by, missing, mismatch, wall, ledger)


def judge(
    s: Settings,
    tally: Tally,
    samples: list[Sample],
    idle: Sample,
    by: dict[str, int],
    missing: int,
    mismatch: int,
    wall: float,
    ledger: dict[str, Any],
) -> Report:
    warm_i = s.warmup_requests()
    warm = next((x for x in samples if x.at_request >= warm_i), samples[0])
    end = samples[-1]
    growth = (end.rss_mib - warm.rss_mib) / warm.rss_mib if warm.rss_mib else 0.0
    fds = [x.fds for x in samples if x.at_request >= warm_i] or [end.fds]
    rows = sum(by.values())
    judged = s.requests - warm_i >= JUDGE_MEMORY_FROM
    failures = []
    if sum(tally.unanswered.values()):
        failures.append(f"requests with no answer: {dict(tally.unanswered)}")
    if rows != tally.sent:
        failures.append(f"{rows} ledger rows for {tally.sent} requests")
    if missing or mismatch:
        failures.append(f"answered without a row: {missing}; row status differs: {mismatch}")
    if judged and growth >= MAX_RSS_GROWTH:
        failures.append(f"RSS grew {growth:.1%} after the warm-up")
    # under load the count follows the connections open at that instant (it swings with
    # bursts); a leak shows once the load is gone: idle, it must be back near the floor
    if idle.fds > min(fds) + FD_SLACK:
        failures.append(
            f"open descriptors did not come back: {idle.fds} idle after the load, "
            f"{min(fds)}–{max(fds)} under it"
        )
    return Report(
        settings=asdict(s),
        wall_s=round(wall, 1),
        achieved_rate=round(tally.sent / wall, 1),
        sent=tally.sent,
        answered=dict(sorted(tally.answered.items())),
        disconnected=tally.disconnected,
        unanswered=dict(tally.unanswered),
        rows=rows,
        rows_by_status=dict(sorted(by.items())),
        answered_without_row=missing,
        status_mismatch=mismatch,
        rss_warmup_mib=warm.rss_mib,
        rss_end_mib=end.rss_mib,
        rss_growth=round(growth, 4),
        rss_max_mib=max(x.rss_mib for x in samples),
        fds_warmup=warm.fds,
        fds_end=end.fds,
        fds_idle_after=idle.fds,
        fds_min_max=(min(fds), max(fds)),
        memory_judged=judged,
        ledger_at_end={
            k: ledger.get("ledger", {}).get(k)
            for k in ("written", "dead_lettered", "journaled", "replayed", "dropped", "clipped")
        },
        samples=[asdict(x) for x in samples],
        failures=failures,
    )


__all__ = ["Report", "Settings", "ready", "soak"]
