"""Start-up for `gateway serve`: config, migrations, the simulator child, uvicorn workers."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from gateway.config import (
    DEFAULT_CONFIG,
    ConfigError,
    GatewayConfig,
    SimulatorConfig,
    load_config,
    with_calibrations,
)
from gateway.ledger.db import is_sqlite, redact_url
from gateway.server import CUT_GRACE_S, DrainingServer
from gateway.serving.drain import Drain

log = logging.getLogger("gateway")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def prepare_database(config: GatewayConfig) -> bool:
    """Check (SQLite: migrate) the ledger's schema; False when the database cannot be
    reached — `serve` starts anyway: rows are journaled until it answers, and the schema is
    checked then (ledger/schema.py). A reachable database at the wrong schema stops it."""
    from gateway.ledger.migrate import SCHEMA_HEAD, current_revision, upgrade

    url = config.database_url
    try:
        current = asyncio.run(current_revision(url))
    except Exception as e:
        if is_sqlite(url):  # a local file that cannot be opened is a configuration error
            raise ConfigError(
                f"database_url: cannot open {redact_url(url)} ({type(e).__name__}: {e})"
            ) from None
        log.warning(
            "database_url: cannot reach %s (%s: %s); starting anyway — ledger rows are "
            "journaled until it answers, and its schema is checked then",
            redact_url(url),
            type(e).__name__,
            e,
        )
        return False
    if current == SCHEMA_HEAD:
        return True
    if is_sqlite(url):
        upgrade(url)  # the embedded default migrates itself
        return True
    raise ConfigError(
        f"the ledger at {redact_url(url)} is at schema {current or 'none'}, "
        f"expected {SCHEMA_HEAD}: run `gateway db upgrade` first"
    )


def upgrade_target(config_path: Path | None, environ: Mapping[str, str]) -> str:
    """The database `gateway db upgrade` migrates: the config's (`GATEWAY_DATABASE_URL`
    overriding it, as for `serve`), or, with no `--config`/`GATEWAY_CONFIG`, that variable
    alone — migrating needs no providers or models, so no config file and no working
    directory; the demo config when neither is given."""
    if config_path is None:
        url = environ.get("GATEWAY_DATABASE_URL")
        if url:
            return url
        config_path = DEFAULT_CONFIG
    return load_config(config_path, environ).database_url


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us when the gateway dies. uvicorn re-raises a
    SIGTERM after its graceful shutdown, which ends the gateway before `finally` or atexit
    could stop the simulator."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def read_calibrations(config: GatewayConfig) -> dict[str, tuple[float, int | None]]:
    """The newest `gateway bench calibrate` result of each self-hosted provider."""
    pools = [p.name for p in config.providers if p.self_hosted]
    if not pools:
        return {}
    from gateway.ledger.calibration import latest_calibration
    from gateway.ledger.db import create_engine

    async def read() -> dict[str, tuple[float, int | None]]:
        engine = create_engine(config.database_url)
        try:
            found = {}
            for name in pools:
                cal = await latest_calibration(engine, name)
                if cal is not None:
                    log.info(
                        "%s: calibrated by bench run %s: %.0f tokens/s, max concurrency %s",
                        name,
                        cal.run_id,
                        cal.total_tokens_per_s,
                        cal.max_concurrency,
                    )
                    found[name] = (cal.total_tokens_per_s, cal.max_concurrency)
            return found
        finally:
            await engine.dispose()

    return asyncio.run(read())


def bind_simulator(sim: SimulatorConfig) -> socket.socket:
    """The simulator's listening socket, bound here, in the gateway's process, so that a port
    already taken stops `serve` with a clear message. The child used to bind it itself: with
    the port taken it died, while another process answered its health check, and the demo's
    providers were served by that process."""
    family = socket.AF_INET6 if ":" in sim.host else socket.AF_INET
    try:
        # SO_REUSEADDR (create_server sets it, as uvicorn does): a port left in TIME_WAIT by a
        # previous run is free; one with a listener on it is not
        return socket.create_server((sim.host, sim.port), family=family, backlog=2048)
    except OSError as e:
        raise ConfigError(
            f"simulator: cannot listen on {sim.host}:{sim.port} ({e.strerror}); another "
            "process is using that port — stop it, or set simulator.port (and the demo "
            "providers' api_base) to a free port"
        ) from None


def start_simulator(sim: SimulatorConfig) -> subprocess.Popen[bytes]:
    sock = bind_simulator(sim)
    with sock:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "simulate",
                "--host",
                sim.host,
                "--port",
                str(sim.port),
                "--profile",
                sim.profile,
                "--fd",
                str(sock.fileno()),
            ],
            preexec_fn=_die_with_parent,
            pass_fds=(sock.fileno(),),
        )
    atexit.register(_stop, proc)
    url = f"http://{sim.host}:{sim.port}/health"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"simulator: exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=0.5):
                log.info("simulator (SIMULATED upstreams) serving on %s:%d", sim.host, sim.port)
                return proc
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    raise ConfigError(f"simulator: did not answer on {url} within 15 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def app_from_env() -> object:
    """uvicorn factory for worker processes: the config path comes from the parent."""
    from gateway.app import create_app

    config = load_config(os.environ["GATEWAY_CONFIG"])
    configure_logging(config.log_level)
    measured = json.loads(os.environ.get("GATEWAY_CALIBRATIONS", "{}"))
    workers = int(os.environ.get("GATEWAY_WORKER_COUNT", "1"))
    config = with_calibrations(config, {k: tuple(v) for k, v in measured.items()})
    return create_app(config, workers=workers)


def run_gateway(config_path: Path, *, host: str, port: int, workers: int) -> None:
    config = load_config(config_path)
    configure_logging(config.log_level)
    from gateway.app import create_app
    from gateway.pricing.table import build_price_table

    build_price_table(config)  # a model without a price stops us here, before anything starts
    reachable = prepare_database(config)
    measured = read_calibrations(config) if reachable else {}
    config = with_calibrations(config, measured)
    os.environ["GATEWAY_CALIBRATIONS"] = json.dumps(measured)  # for worker processes
    drain = Drain()
    app = create_app(config, drain=drain) if workers == 1 else None
    sim = start_simulator(config.simulator) if config.simulator else None
    common = uvicorn_options(config, host, port)
    try:
        if workers == 1:
            server = DrainingServer(uvicorn.Config(app, **common), drain, config.server)  # type: ignore[arg-type]
            try:
                server.run()
            except KeyboardInterrupt:  # SIGINT, re-raised after the shutdown: as uvicorn.run
                pass
            if not server.started:
                sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run does
        else:
            _run_workers(config_path, workers, common)
    finally:
        if sim is not None:
            _stop(sim)


def uvicorn_options(config: GatewayConfig, host: str, port: int) -> dict[str, object]:
    # proxy_headers off: the gateway trusts no X-Forwarded-* by default, and parsing them
    # wrapped every request in one more middleware. No `server: uvicorn` header: it names
    # the software to whoever probes, and is one more header checked on every response.
    return dict(
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level=config.log_level,
        # the single process drains itself (server.py) within this; workers stop at it
        timeout_graceful_shutdown=config.server.drain_timeout_s + CUT_GRACE_S,
        timeout_keep_alive=config.client_keepalive_s,
        lifespan="on",
    )


def _run_workers(config_path: Path, workers: int, common: dict[str, object]) -> None:
    # prometheus-client picks multiprocess mode at import, from this variable: set it before
    # the workers start, in a fresh directory (stale files would be summed in).
    mp_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
    os.environ["GATEWAY_CONFIG"] = str(config_path.resolve())
    os.environ["GATEWAY_WORKER_COUNT"] = str(workers)  # the workers share per-process caps
    try:
        uvicorn.run("gateway.runner:app_from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(mp_dir, ignore_errors=True)
