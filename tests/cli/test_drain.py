"""`gateway serve` as a process, stopped with SIGTERM while streams run and clients keep
sending over kept-alive connections (the drain, gateway/server.py); and started while its
PostgreSQL is unreachable (ledger/schema.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import orjson

from benchmarks.ledger_outage.proxy import TcpProxy
from tests.conftest import via
from tests.support import fetch_rows, free_port, wait_rows

ROOT = Path(__file__).parents[2]
DELAY_S, TIMEOUT_S = 2.0, 4.0
CHAT = "/v1/chat/completions"


def start(
    tmp_path: Path, extra_yaml: str, database_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str, IO[bytes]]:
    """`gateway serve` on the demo config (free ports, its own ledger and journal), output
    to a file; once /health answers: (process, base URL, log file)."""
    gw_port, sim_port = free_port(), free_port()
    db = database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    demo = (ROOT / "config" / "demo.yaml").read_text()
    demo = (
        demo.replace("port: 8001", f"port: {sim_port}")
        .replace("127.0.0.1:8001", f"127.0.0.1:{sim_port}")
        .replace("sqlite+aiosqlite:///./gateway.db", db)
    )
    cfg = tmp_path / "gw.yaml"
    journal = tmp_path / "journal"
    cfg.write_text(
        f"{demo}\n{extra_yaml}\nlogging: {{access_log: off}}\n"
        f"ledger: {{flush_interval_ms: 50, journal_dir: {journal}}}\n"
    )
    log = (tmp_path / "gateway.log").open("w+b")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(gw_port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{gw_port}"
    deadline = time.monotonic() + 40
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return proc, base, log
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(output(log))
        time.sleep(0.1)


def output(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


@dataclass
class Sent:
    at: float
    status: int | None = None  # None: no answer
    error: str | None = None
    request_id: str | None = None
    body: bytes = b""


@dataclass
class KeepAliveClient:
    """Sends small requests back to back on one httpx pool until told to stop."""

    base: str
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {
            "model": "llama-3.1-8b",
            "max_tokens": 3,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                s = Sent(time.monotonic())
                self.sent.append(s)
                try:
                    r = client.post(self.base + CHAT, json=body)
                    s.status, s.request_id, s.body = (
                        r.status_code,
                        r.headers.get("x-request-id"),
                        r.content,
                    )
                except httpx.HTTPError as e:
                    s.error = type(e).__name__
                    time.sleep(0.02)


def open_stream(
    client: httpx.Client, base: str, tokens: int
) -> tuple[httpx.Response, Iterator[bytes]]:
    req = client.build_request(
        "POST",
        base + CHAT,
        json={
            "model": "llama-3.1-8b",
            "stream": True,
            "max_tokens": tokens,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    r = client.send(req, stream=True)
    assert r.status_code == 200
    chunks = r.iter_raw()
    next(chunks)
    return r, chunks


def test_sigterm_drains_answers_everyone_and_cuts_only_what_outlives_the_timeout(
    tmp_path: Path,
) -> None:
    proc, base, log = start(
        tmp_path, f"server: {{drain_delay_s: {DELAY_S}, drain_timeout_s: {TIMEOUT_S}}}\n"
    )
    clients = [KeepAliveClient(base) for _ in range(3)]
    threads = [threading.Thread(target=c.run) for c in clients]
    streamer = httpx.Client(timeout=60)
    try:
        # ~4.6 ms a token on the simulated H100: ~1 s (ends within the timeout) and ~45 s
        short, short_chunks = open_stream(streamer, base, 200)
        long, long_chunks = open_stream(streamer, base, 10_000)
        for t in threads:
            t.start()
        time.sleep(0.5)
        ready = httpx.get(f"{base}/health/ready")
        assert ready.status_code == 200
        assert "server" not in ready.headers  # `gateway serve` does not name its software
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        r = httpx.get(f"{base}/health/ready")
        assert r.status_code == 503 and r.json()["status"] == "draining"
        assert time.monotonic() - signalled < 1.0
        short_body = b"".join(short_chunks)
        long_body = b"".join(long_chunks)
        ended_at = time.monotonic() - signalled
        proc.wait(timeout=DELAY_S + TIMEOUT_S + 15)
    finally:
        for c in clients:
            c.stop.set()
        for t in threads:
            t.join(30)
        streamer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = output(log)

    # the short stream finished as usual; the long one was cut at the drain timeout, in-band
    assert short_body.rstrip().endswith(b"data: [DONE]"), out
    assert b'"finish_reason":"length"' in short_body.replace(b" ", b"")
    events = [e for e in long_body.split(b"\n\n") if e.startswith(b"data: {")]
    last = orjson.loads(events[-1][len(b"data: ") :])
    assert last["error"]["code"] == "gateway_shutdown", out
    assert long_body.rstrip().endswith(b"data: [DONE]")
    assert DELAY_S + TIMEOUT_S - 0.5 < ended_at < DELAY_S + TIMEOUT_S + 3

    # every request sent got an answer, or never reached the gateway (connection refused
    # once the listener closed); none was dropped on a kept-alive connection
    sent = [s for c in clients for s in c.sent]
    answered = [s for s in sent if s.status is not None]
    assert {s.error for s in sent if s.status is None} <= {"ConnectError"}, out
    during_delay = [s for s in answered if signalled + 0.1 < s.at < signalled + DELAY_S - 0.2]
    assert during_delay and all(s.status == 200 for s in during_delay)
    for s in answered:
        assert s.status in (200, 503), s
        if s.status == 503:
            assert orjson.loads(s.body)["error"]["code"] == "gateway_shutdown"

    # one row for each, saying why: the cut stream is gateway_shutdown, nothing is a 499
    rows = {r["id"]: r for r in fetch_rows(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")}
    for s in answered:
        assert s.request_id in rows and rows[s.request_id]["status_code"] == s.status
    cut = rows[long.headers["x-request-id"]]
    assert (cut["status_code"], cut["error_type"]) == (503, "gateway_shutdown")
    assert rows[short.headers["x-request-id"]]["status_code"] == 200
    assert len(rows) == len(answered) + 2
    assert not [r for r in rows.values() if r["status_code"] == 499]
    assert "drain done" in out and "1 cut at the drain timeout" in out, out


def test_serve_starts_while_postgres_is_down_and_writes_the_rows_when_it_returns(
    tmp_path: Path, pg_url: str, pg_proxy: TcpProxy
) -> None:
    from tests.conftest import _pg_exec_on

    _pg_exec_on(pg_url, "TRUNCATE requests")
    pg_proxy.cut()
    proc, base, log = start(tmp_path, "", database_url=via(pg_proxy, pg_url))
    try:
        ready = httpx.get(f"{base}/health/ready")
        # rows are safe in the journal: reported, not fatal
        assert ready.status_code == 200, ready.text
        ledger = ready.json()["ledger"]
        assert ledger["schema"].startswith("unverified"), ledger
        ids = []
        for stream in (False, True):
            r = httpx.post(
                base + CHAT,
                json={
                    "model": "gpt-4o-mini",
                    "stream": stream,
                    "messages": [{"role": "user", "content": "Hi"}],
                },
            )
            assert r.status_code == 200
            ids.append(r.headers["x-request-id"])
        assert fetch_rows(pg_url) == []
        pg_proxy.restore()
        rows = wait_rows(pg_url, 2, timeout=40)
        assert sorted(r["id"] for r in rows) == sorted(ids)
        deadline = time.monotonic() + 30  # the check backs off up to 15 s between tries
        while (schema := httpx.get(f"{base}/health/ready").json()["ledger"]["schema"]) != "ok":
            assert time.monotonic() < deadline, schema
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output(log)
    assert "starting anyway" in output(log)
