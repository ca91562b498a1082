"""Redis going away mid-run, on a Redis server of the test's own (started here, on a free
loopback port, and stopped here): the gateway keeps serving on local counters, says so, and
when Redis answers again the spend it counted meanwhile is there — once — whether Redis only
paused (a timed-out call may still have run) or came back empty (rebuilt from the ledger)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import httpx
import openai
import pytest
import redis

from tests.conftest import GatewayFactory
from tests.governance_support import AdminClient, gov_config
from tests.support import ServerThread, fetch_rows, free_port

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}


class OwnRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is installed by .ci/run"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    yield r
    r.stop()


def wait_for(gw: ServerThread, counters: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{gw.url}/health/ready").json()["governance"]["counters"] != counters:
        assert time.monotonic() < deadline, f"counters never became {counters!r}"
        time.sleep(0.05)


def ledger_spend(db: str, team: str, n: int) -> int:
    """The team's ledger spend in nanodollars, once `n` rows are in."""
    deadline = time.monotonic() + 10
    while len(rows := fetch_rows(db, team=team, status_code=200)) < n:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    nano = Decimal(1_000_000_000)
    return sum(int((r["cost_usd"] * nano).to_integral_value(ROUND_CEILING)) for r in rows)


def test_serving_through_a_redis_pause_and_a_redis_restart(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, own_redis: OwnRedis
) -> None:
    prefix = "gwtest-outage:"
    gw = gateway_factory(
        gov_config(
            sim.url,
            sqlite_url,
            redis_url=own_redis.url,
            ledger={"flush_interval_ms": 10},
            governance={"redis_key_prefix": prefix, "redis_timeout_s": 0.2},
        )
    )
    wait_for(gw, "redis")
    admin = AdminClient(gw.url)
    admin.team("t", budget_usd_day="1000")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=admin.key("t")["key"], max_retries=0)

    def served(n: int) -> None:
        for _ in range(n):
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
            time.sleep(0.03)  # each settled before the next

    def redis_spend() -> int:
        return int(own_redis.client().hget(f"{prefix}s:t:t", "d") or 0)

    served(3)
    time.sleep(0.2)
    assert redis_spend() == ledger_spend(sqlite_url, "t", 3)

    own_redis.signal(signal.SIGSTOP)  # paused: calls time out, and may run when it resumes
    served(3)
    ready = httpx.get(f"{gw.url}/health/ready").json()
    assert ready["status"] == "ready"
    assert ready["governance"]["counters"] == "local (redis unreachable)"
    assert "redis_down_since" in ready["governance"]
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "gateway_governance_redis_up 0.0" in metrics
    assert "gateway_governance_redis_fallbacks_total 1.0" in metrics
    own_redis.signal(signal.SIGCONT)
    wait_for(gw, "redis")
    served(1)
    time.sleep(0.2)
    assert redis_spend() == ledger_spend(sqlite_url, "t", 7)  # each request counted once

    own_redis.stop()  # gone, and back empty: rebuilt from the ledger
    served(2)
    wait_for(gw, "local (redis unreachable)", timeout=2)
    own_redis.start()
    wait_for(gw, "redis")
    served(1)
    time.sleep(0.2)
    assert abs(redis_spend() - ledger_spend(sqlite_url, "t", 10)) <= 10  # summed vs per row


def test_settlements_are_replayed_once_after_a_pause(own_redis: OwnRedis) -> None:
    """The shared counters alone, no ledger to rebuild from: what was settled while Redis was
    paused reaches it once — also the settlement whose call timed out but ran when Redis
    resumed (replayed as "s?", it sees its reservation gone and does nothing)."""
    from gateway.governance.counters import Op
    from gateway.governance.redis_counters import RedisCounters
    from gateway.governance.shared import SharedCounters

    prefix = "gwtest-replay:"
    budget = [["k:a", -1, -1, -1, -1], ["t:x", -1, -1, 10_000, -1]]

    def admit(rid: str) -> Op:
        return ["a", rid, 1, 100, 20_000, 600, 60_000, "k:a", budget]

    async def no_seeds() -> list[Op]:
        return []

    async def scenario() -> None:
        shared = SharedCounters(RedisCounters(own_redis.url, prefix, 0.2), no_seeds)
        await shared.start()
        assert shared.up
        await shared.call(admit("1"))
        shared.settle(("k:a", "t:x"), 20_000, 600, "1", 40, 0)
        await shared.call(admit("2"))
        own_redis.signal(signal.SIGSTOP)
        shared.settle(("k:a", "t:x"), 20_000, 600, "2", 50, 0)  # out with the next admission…
        assert (await shared.call(admit("3")))[0] == 1  # …which times out: served locally
        assert not shared.up
        shared.settle(("k:a", "t:x"), 20_000, 600, "3", 60, 0)  # settled locally, for replay
        own_redis.signal(signal.SIGCONT)  # the timed-out call runs now
        deadline = time.monotonic() + 5
        while not shared.up:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await shared.aclose()

    import asyncio

    asyncio.run(scenario())
    state = own_redis.client().hgetall(f"{prefix}s:t:x")
    assert int(state[b"d"]) == 40 + 50 + 60
    assert int(state[b"r"]) == 0  # every reservation released


def test_one_pipelined_connection_matches_replies_and_recovers(own_redis: OwnRedis) -> None:
    """RedisCounters' own RESP connection, on uvloop as the gateway runs it: concurrent calls
    share one connection and each gets its own reply; an error reply leaves the connection
    usable; a call that times out (Redis paused) closes it, and the next call after Redis
    resumes opens a new one."""
    import asyncio

    import uvloop
    from redis.exceptions import ResponseError

    from gateway.governance.redis_counters import RedisCounters

    async def scenario() -> None:
        counters = RedisCounters(f"redis://127.0.0.1:{own_redis.port}/3", "gwtest-resp:", 0.3)
        try:
            echoes = await asyncio.gather(*(counters._call("ECHO", f"m{i}") for i in range(200)))
            assert echoes == [f"m{i}".encode() for i in range(200)]
            first = counters._conn
            assert first is not None
            assert await counters._call("SET", "gwtest-resp:db", "3") == b"OK"
            with pytest.raises(ResponseError, match="unknown command"):
                await counters._call("NO-SUCH-COMMAND")
            assert await counters._call("ECHO", "still") == b"still"
            assert counters._conn is first
            own_redis.signal(signal.SIGSTOP)
            try:
                with pytest.raises(TimeoutError):
                    await counters._call("PING")
                assert first.closed
            finally:
                own_redis.signal(signal.SIGCONT)
            assert await counters._call("PING") == b"PONG"
            assert counters._conn is not first
            # the URL's database was selected on both connections
            assert await counters._call("GET", "gwtest-resp:db") == b"3"
            await counters.delete_all()
            assert await counters._call("EXISTS", "gwtest-resp:db") == 0
        finally:
            await counters.aclose()

    uvloop.run(scenario())


def test_tls_unix_socket_and_password_urls(tmp_path: Path) -> None:
    """`rediss://` (the server's certificate checked against `ssl_ca_certs`), `unix://` and
    a password, as redis-py's URLs say them; a wrong password is an error reply."""
    import asyncio

    from redis.exceptions import ResponseError

    from gateway.governance.redis_counters import RedisCounters

    openssl, binary = shutil.which("openssl"), shutil.which("redis-server")
    assert openssl and binary, "openssl and redis-server are installed by .ci/run"
    cert, key, sock = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "redis.sock"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
        + ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        + ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        + ["--unixsocket", str(sock), "--requirepass", "s3cret-pw", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )

    async def scenario() -> None:
        tls = RedisCounters(f"rediss://:s3cret-pw@localhost:{port}/2?ssl_ca_certs={cert}", "p:", 2)
        unix = RedisCounters(f"unix://:s3cret-pw@{sock}?db=2", "p:", 2)
        wrong = RedisCounters(f"unix://:wrong-pw@{sock}?db=2", "p:", 2)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    await tls.ping()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    await asyncio.sleep(0.05)
            assert await tls._call("SET", "k", "over tls") == b"OK"
            assert await unix._call("GET", "k") == b"over tls"  # the same database 2
            with pytest.raises(ResponseError):
                await wrong.ping()
        finally:
            for c in (tls, unix, wrong):
                await c.aclose()

    try:
        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(10)
