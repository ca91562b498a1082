"""Helpers for the governance tests: a config with auth on, and the admin API as a client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.config import GatewayConfig
from tests.conftest import sim_config
from tests.support import free_port

MASTER = "sk-master-test-0123456789"
MASTER_HEADERS = {"authorization": f"Bearer {MASTER}"}


def gov_config(sim_url: str, db_url: str, **extra: Any) -> GatewayConfig:
    auth = {"master_key": MASTER, **extra.pop("auth", {})}
    return sim_config(sim_url, db_url, auth=auth, **extra)


class AdminClient:
    def __init__(self, base_url: str, key: str = MASTER) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {key}"})

    def team(self, name: str, **limits: Any) -> dict[str, Any]:
        r = self.http.post("/admin/teams", json={"name": name, **limits})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def key(self, team: str, **spec: Any) -> dict[str, Any]:
        r = self.http.post("/admin/keys", json={"team": team, **spec})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def revoke(self, key_id: str) -> dict[str, Any]:
        r = self.http.delete(f"/admin/keys/{key_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


class GatewayProcess:
    """`gateway serve` in a process of its own on a free loopback port; output to a file."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("GATEWAY_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> str:
        """Stop it gracefully (flushing its ledger rows); returns everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.log_path.read_text(errors="replace")
