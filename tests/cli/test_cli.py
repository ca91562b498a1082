"""`gateway …` through typer's CliRunner, and `gateway serve` on the demo config as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from tests.support import fetch_rows, free_port, wait_rows

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output == f"gateway {version('llm-cost-gateway')}\n"


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("providers:\n  - name: p\n    kind: azure\n    api_base: x\nmodels: []\n")
    r = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert r.exit_code == 2
    assert str(cfg) in r.output and "providers[0].kind" in r.output
    assert "Traceback" not in r.output


def test_missing_env_var_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "providers:\n  - name: p\n    kind: openai\n    api_base: http://127.0.0.1:1\n"
        "    api_key: ${NO_SUCH_KEY}\nmodels:\n  - name: gpt-4o-mini\n    provider: p\n"
    )
    r = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert r.exit_code == 2 and "providers[0].api_key" in r.output and "NO_SUCH_KEY" in r.output


def test_unpriced_model_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "providers:\n  - name: p\n    kind: vllm\n    api_base: http://127.0.0.1:1\n"
        "models:\n  - name: my-finetune\n    provider: p\n"
    )
    r = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert r.exit_code == 2 and "my-finetune" in r.output and "no price" in r.output


def test_db_upgrade_creates_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"database_url: sqlite+aiosqlite:///{db}\nproviders:\n  - name: p\n"
        "    kind: openai\n    api_base: http://127.0.0.1:1\nmodels:\n"
        "  - name: gpt-4o-mini\n    provider: p\n"
    )
    r = runner.invoke(app, ["db", "upgrade", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert fetch_rows(f"sqlite+aiosqlite:///{db}") == []  # the table exists and is empty


def test_serve_refuses_an_unmigrated_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import PG_ADMIN_DSN, _pg_exec

    name = f"gw_cli_{os.getpid()}"
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        url = (
            PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            + "/"
            + name
        )
        monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
        r = runner.invoke(app, ["serve", "--config", str(ROOT / "config" / "demo.yaml")])
        assert r.exit_code == 2 and "gateway db upgrade" in r.output
        r = runner.invoke(app, ["db", "upgrade", "--config", str(ROOT / "config" / "demo.yaml")])
        assert r.exit_code == 0, r.output
        assert fetch_rows(url) == []
    finally:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def serve_demo(tmp_path: Path, extra_yaml: str) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    """`gateway serve` on the demo config (free ports, a fresh SQLite ledger, `extra_yaml`
    appended) as a process, once it answers /health: (process, gateway port, simulator port,
    ledger file)."""
    gw_port, sim_port = free_port(), free_port()
    db = tmp_path / "gateway.db"
    demo = (ROOT / "config" / "demo.yaml").read_text()
    demo = (
        demo.replace("port: 8001", f"port: {sim_port}")
        .replace("127.0.0.1:8001", f"127.0.0.1:{sim_port}")
        .replace("sqlite+aiosqlite:///./gateway.db", f"sqlite+aiosqlite:///{db}")
    )
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(demo + "\n" + extra_yaml)
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(gw_port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{gw_port}/health").status_code == 200:
                return proc, gw_port, sim_port, db
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate()[0].decode())
        time.sleep(0.1)


def test_demo_serve_starts_simulator_and_records_a_priced_row(tmp_path: Path) -> None:
    """The README's first command, on free ports: serve the demo, call it, find the row."""
    proc, gw_port, sim_port, db = serve_demo(tmp_path, "client_keepalive_s: 1\n")
    try:
        r = httpx.post(
            f"http://127.0.0.1:{gw_port}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert r.status_code == 200, r.text
        row = wait_rows(f"sqlite+aiosqlite:///{db}", 1)[0]
        assert row["provider"] == "openai" and row["cost_usd"] > 0
        assert httpx.get(f"http://127.0.0.1:{sim_port}/health").status_code == 200
        # client_keepalive_s reaches uvicorn: an idle connection is closed after 1 s
        with socket.create_connection(("127.0.0.1", gw_port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            sock.settimeout(4)
            answer = b""
            while not answer.endswith(b"}"):  # headers and the JSON body may come apart
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert sock.recv(4096) == b""  # closed by the server
            assert 0.5 < time.monotonic() - started < 3
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    with pytest.raises(httpx.ConnectError):  # the simulator child stopped with the gateway
        httpx.get(f"http://127.0.0.1:{sim_port}/health")


def test_a_forced_shutdown_loses_no_ledger_row(tmp_path: Path) -> None:
    """Ctrl-C twice: the server skips the graceful drain and the lifespan's shutdown, then
    the event loop cancels every task. Rows still queued, and the rows of the streams cut off
    (`gateway_shutdown`: the gateway ended them, not their clients), are written anyway."""
    # nothing is written before the end
    proc, gw_port, _, db = serve_demo(tmp_path, "ledger: {flush_interval_ms: 600000}\n")
    base = f"http://127.0.0.1:{gw_port}"
    streams: list[tuple[httpx.Response, Iterator[bytes]]] = []
    client = httpx.Client(timeout=30)
    try:
        for _ in range(5):
            r = client.post(
                f"{base}/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
            )
            assert r.status_code == 200
        for _ in range(3):  # ~2,000 tokens at ~4.6 ms: still streaming when we stop
            req = client.build_request(
                "POST",
                f"{base}/v1/chat/completions",
                json={
                    "model": "llama-3.1-8b",
                    "stream": True,
                    "max_tokens": 2000,
                    "ignore_eos": True,
                    "messages": [{"role": "user", "content": "Hi"}],
                },
            )
            s = client.send(req, stream=True)
            chunks = s.iter_raw()  # kept: a dropped iterator closes its response
            next(chunks)
            streams.append((s, chunks))
        proc.send_signal(signal.SIGINT)  # graceful: uvicorn waits for the ~9 s streams ...
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # ... forced: it stops waiting, the loop cancels all
        try:
            out = proc.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode()
            raise AssertionError(out) from None
    finally:
        for s, _ in streams:
            s.close()
        client.close()
        if proc.poll() is None:
            proc.kill()
    rows = fetch_rows(f"sqlite+aiosqlite:///{db}")
    assert len(rows) == 8, out
    assert sorted(r["status_code"] for r in rows) == [200] * 5 + [503] * 3
    assert {r["error_type"] for r in rows if r["status_code"] == 503} == {"gateway_shutdown"}
