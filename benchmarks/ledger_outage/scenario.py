"""One ledger scenario: a gateway process (`gateway serve`) whose PostgreSQL sits behind a TCP
proxy, driven at a steady rate, its database cut for a while, killed with SIGKILL, restarted
on the same journal, and every answered request looked up in the ledger afterwards.

Timeline (seconds; `outage_s` = 0 is the no-outage variant):

    0 ─ steady_s ─┬─ cut ─ kill_at_s ─ SIGKILL ─ outage_s ─ restore ─ restart ─ after_s ─ stop
                  └─ (no outage: SIGKILL at steady_s + kill_at_s, restart at once)

Latency percentiles come from the steady phase, when nothing is wrong (after a 1 s warm-up).
A row counts as lost when its request was answered (a complete 200) and no row with its id is
in the database after the restarted gateway has drained its journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from benchmarks.common.procs import Proc, free_port, gateway_cmd
from benchmarks.ledger_outage.load import Load, answered_at, latency_summary
from benchmarks.ledger_outage.proxy import TcpProxy

WARM_UP_S = 1.0


@dataclass(slots=True)
class Settings:
    mode: str  # ledger durability: async | journal | sync
    rate: float = 200.0
    steady_s: float = 5.0
    outage_s: float = 20.0  # 0: kill without an outage
    kill_at_s: float = 15.0  # into the outage (or into the run, without one)
    after_s: float = 5.0
    closed_loop_s: float = 0.0  # a closed-loop throughput phase before the outage
    concurrency: int = 32
    prompt_kb: float = 0.0  # pad each prompt to this size (memory: rows must not keep bodies)


@dataclass(slots=True)
class Result:
    settings: dict[str, Any]
    steady_latency: dict[str, float]
    closed_loop_rps: float | None
    sent: int
    answered: int
    answered_before_kill: int
    lost: int  # answered by the killed process, no row after the restart
    lost_within_ms: float | None  # every lost row was answered within this long of the kill
    rows_for_answered: int
    dead_lettered: int
    journal_rows_at_kill: int | None
    rss_mib: dict[str, float] = field(default_factory=dict)
    replay_s: float | None = None  # restart (process start included) → journal empty
    ledger_log: list[str] = field(default_factory=list)  # the gateways' ledger log lines


def pg_parts(admin_dsn: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    u = make_url(admin_dsn)
    return u.host or "127.0.0.1", u.port or 5432


async def create_database(admin_dsn: str) -> str:
    """A fresh database, migrated; its SQLAlchemy URL (direct, not through the proxy)."""
    from gateway.ledger.migrate import upgrade

    name = f"gw_ledger_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{url}/{name}"
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(admin_dsn: str, url: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def present_ids(url: str, ids: list[str]) -> tuple[set[str], int]:
    """Which of `ids` have a ledger row, and how many rows are dead-lettered."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT id FROM requests WHERE id = any($1::text[])", ids)
        dead = await conn.fetchval("SELECT count(*) FROM ledger_dead_letters")
    finally:
        await conn.close()
    return {r["id"] for r in rows}, int(dead)


def write_config(path: Path, s: Settings, database_url: str, sim_url: str, journal: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "database_url": database_url,
                "log_level": "info",
                "ledger": {"durability": s.mode, "journal_dir": str(journal)},
                "providers": [
                    {
                        "name": "sim",
                        "kind": "openai",
                        "api_base": f"{sim_url}/instant/v1",
                        "api_key": "sk-bench",
                    }
                ],
                "models": [{"name": "bench", "provider": "sim", "upstream_model": "gpt-4o-mini"}],
            }
        )
    )


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Gateway:
    def __init__(self, config: Path, port: int, work: Path) -> None:
        self.config, self.port, self.work = config, port, work
        self.url = f"http://127.0.0.1:{port}"
        self.proc: Proc | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = Proc(
            gateway_cmd("serve", "--config", str(self.config), "--port", str(self.port)),
            f"{self.url}/health",
            self.work / f"gateway-{self.starts}.log",
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.p.pid

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.p.pid, signal.SIGKILL)
        self.proc.p.wait()
        self.proc.stop()  # closes its log

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = _get(f"{self.url}/health/ready")
        return body


async def run(
    s: Settings, admin_dsn: str, sim_url: str, work: Path, database_url: str | None = None
) -> Result:
    """Run one scenario on a scratch database (or on `database_url`, already migrated)."""
    work.mkdir(parents=True, exist_ok=True)
    db = database_url or await create_database(admin_dsn)
    proxy = TcpProxy(*pg_parts(admin_dsn)).start()
    try:
        from sqlalchemy.engine import make_url

        via = make_url(db).set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        cfg = work / "gateway.json"
        write_config(cfg, s, via, sim_url, work / "journal")
        gw = Gateway(cfg, free_port(), work)
        await asyncio.to_thread(gw.start)
        try:
            return await _drive(s, gw, proxy, db, work)
        finally:
            await asyncio.to_thread(gw.stop)
    finally:
        proxy.stop()
        if database_url is None:
            await drop_database(admin_dsn, db)


async def _drive(s: Settings, gw: Gateway, proxy: TcpProxy, db: str, work: Path) -> Result:
    content = "x" * int(s.prompt_kb * 1024) if s.prompt_kb else "Say hello."
    body = {"model": "bench", "messages": [{"role": "user", "content": content}]}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        load = Load(session, gw.url, body)
        pid = gw.pid
        rss = {"start": rss_mib(pid)}
        await load.open_loop(s.rate, WARM_UP_S)  # counted for losses, not for latency
        steady = await load.open_loop(s.rate, s.steady_s)
        await load.settle()
        rps = await load.closed_loop(s.concurrency, s.closed_loop_s) if s.closed_loop_s else None
        if s.outage_s:
            proxy.cut()
            rss["outage_start"] = rss_mib(pid)
        await load.open_loop(s.rate, s.kill_at_s)
        journal_at_kill = gw.ready()["ledger"]["journal_rows"]
        rss["before_kill"] = rss_mib(pid)
        gw.kill9()
        killed_at = time.perf_counter()
        await load.settle()  # requests in flight at the kill fail; answered ones are recorded
        if s.outage_s:
            await load.open_loop(s.rate, max(s.outage_s - s.kill_at_s, 0.0))  # gateway down
            proxy.restore()
        # every response that completed before the restart came from the killed process
        restarted = time.perf_counter()
        first = load.answered(before=restarted)
        await asyncio.to_thread(gw.start)
        drained = asyncio.create_task(_until_drained(gw, restarted))
        await load.open_loop(s.rate, s.after_s)
        await load.settle()
        replay_s = await drained
        await asyncio.to_thread(gw.stop)
    answered = load.answered()
    present, dead = await present_ids(db, [str(r.request_id) for r in answered])
    lost = [answered_at(r) for r in first if r.request_id not in present]
    return Result(
        settings=asdict(s),
        steady_latency=latency_summary(steady),
        closed_loop_rps=None if rps is None else round(rps, 1),
        sent=len(load.results),
        answered=len(answered),
        answered_before_kill=len(first),
        lost=len(lost),
        lost_within_ms=round((killed_at - min(lost)) * 1000, 1) if lost else None,
        rows_for_answered=len(present),
        dead_lettered=dead,
        journal_rows_at_kill=journal_at_kill,
        rss_mib={k: round(v, 1) for k, v in rss.items()},
        replay_s=replay_s,
        ledger_log=_ledger_log(work),
    )


def _ledger_log(work: Path) -> list[str]:
    return [
        line
        for f in sorted(work.glob("gateway-*.log"))
        for line in f.read_text(errors="replace").splitlines()
        if "gateway.ledger" in line
    ][-20:]


async def _until_drained(gw: Gateway, since: float, timeout: float = 120.0) -> float | None:
    while time.perf_counter() - since < timeout:
        try:
            led = gw.ready()["ledger"]
            if led["journal_rows"] == 0 and led["backlog_rows"] == 0:
                return round(time.perf_counter() - since, 2)
        except (OSError, KeyError, ValueError):
            pass
        await asyncio.sleep(0.2)
    return None
