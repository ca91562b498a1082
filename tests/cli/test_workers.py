"""`gateway serve --workers 2`: metrics aggregated across workers, every row written once,
graceful shutdown of all processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import ServerThread, fetch_rows, free_port


def test_two_workers_share_metrics_and_lose_no_rows(sim: ServerThread, tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"""database_url: sqlite+aiosqlite:///{db}
log_level: warning
providers:
  - name: sim
    kind: openai
    api_base: {sim.url}/instant/v1
models:
  - name: gpt-4o-mini
    provider: sim
""")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GATEWAY_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(cfg),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(40):  # a new connection each time, so both workers take requests
            with httpx.Client() as c:
                assert c.post(f"{url}/v1/chat/completions", json=body).status_code == 200
        time.sleep(0.5)  # the writers' flush interval
        text = httpx.get(f"{url}/metrics").text
        served = sum(
            float(v)
            for v in re.findall(
                r'gateway_requests_total\{model="gpt-4o-mini",provider="sim",status_class="2xx"\} (\S+)',
                text,
            )
        )
        assert served == 40, text
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    rows = fetch_rows(f"sqlite+aiosqlite:///{db}")
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
