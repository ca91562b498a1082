"""What the soak reads from the gateway's process and its readiness endpoint (Linux /proc)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    at_request: int  # requests started so far
    rss_mib: float
    fds: int


def sample(pid: int, at_request: int) -> Sample:
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return Sample(at_request, round(rss, 1), len(os.listdir(f"/proc/{pid}/fd")))


def ready(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=5) as r:
            body: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
    return body


def wait_ledger_empty(url: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Wait until the gateway holds no ledger row that is not in the database yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = ready(url)
        ledger = body.get("ledger", {})
        if ledger.get("backlog_rows", 1) == 0 and ledger.get("journal_rows", 1) == 0:
            return body
        if time.monotonic() > deadline:
            return body
        time.sleep(0.5)
