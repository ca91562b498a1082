"""`gateway serve` with the simulator's port taken, and `gateway db upgrade` with nothing but
GATEWAY_DATABASE_URL — both as real processes, from a directory with no config in it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.cli.test_cli import ROOT
from tests.support import ServerThread, fetch_rows, free_port


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("GATEWAY_DATABASE_URL", "GATEWAY_CONFIG")
    }
    return {**env, **extra}


def test_serve_stops_with_a_clear_message_when_the_simulators_port_is_taken(
    tmp_path: Path,
) -> None:
    """Another HTTP server — one that even answers /health — holds the simulator's port."""

    async def health(request: object) -> PlainTextResponse:
        return PlainTextResponse("someone else")

    squatter = ServerThread(Starlette(routes=[Route("/health", health)])).start()
    gw_port = free_port()
    try:
        demo = (ROOT / "config" / "demo.yaml").read_text()
        demo = (
            demo.replace("port: 8001", f"port: {squatter.port}")
            .replace("127.0.0.1:8001", f"127.0.0.1:{squatter.port}")
            .replace("./gateway.db", str(tmp_path / "gateway.db"))
        )
        cfg = tmp_path / "demo.yaml"
        cfg.write_text(demo)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--config", str(cfg)]
            + ["--port", str(gw_port)],
            env=_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert time.monotonic() - started < 20
        assert done.returncode == 2, done.stderr
        assert f"simulator: cannot listen on 127.0.0.1:{squatter.port}" in done.stderr
        assert "another process is using that port" in done.stderr
        assert "Traceback" not in done.stderr
        try:  # and the gateway never started serving
            httpx.get(f"http://127.0.0.1:{gw_port}/health", timeout=1)
            raise AssertionError("the gateway is serving")
        except httpx.ConnectError:
            pass
        assert httpx.get(f"{squatter.url}/health").text == "someone else"  # untouched
    finally:
        squatter.stop()


def _upgrade(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "db", "upgrade"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_needs_only_the_database_url(tmp_path: Path) -> None:
    from tests.conftest import PG_ADMIN_DSN, _pg_exec

    elsewhere = tmp_path / "no-config-here"
    elsewhere.mkdir()
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    done = _upgrade(_env(GATEWAY_DATABASE_URL=sqlite), elsewhere)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout and fetch_rows(sqlite) == []

    name = f"gw_upgrade_{os.getpid()}"
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{name}"
        done = _upgrade(_env(GATEWAY_DATABASE_URL=url), elsewhere)
        assert done.returncode == 0, done.stderr
        assert fetch_rows(url) == []  # the ledger's table is there
        again = _upgrade(_env(GATEWAY_DATABASE_URL=url), elsewhere)
        assert again.returncode == 0, again.stderr  # and a second run is a no-op
    finally:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_db_upgrade_without_url_or_config_names_the_missing_file(tmp_path: Path) -> None:
    done = _upgrade(_env(), tmp_path)
    assert done.returncode == 2
    assert "config/demo.yaml" in done.stderr and "cannot read config file" in done.stderr


def test_db_upgrade_with_a_config_still_reads_it(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"database_url: sqlite+aiosqlite:///{db}\nproviders:\n  - name: p\n"
        "    kind: openai\n    api_base: http://127.0.0.1:1\nmodels:\n"
        "  - name: gpt-4o-mini\n    provider: p\n"
    )
    done = _upgrade(_env(GATEWAY_CONFIG=str(cfg)), ROOT)
    assert done.returncode == 0, done.stderr
    assert fetch_rows(f"sqlite+aiosqlite:///{db}") == []
