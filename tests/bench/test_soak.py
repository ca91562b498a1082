"""The soak program (benchmarks/soak) end to end at a tiny size: real processes, faults on,
clients leaving; every request reconciled against the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.soak.mix import ENDPOINTS, KINDS, plan


def test_the_mix_covers_every_endpoint_kind_and_mode_with_distinct_prompts() -> None:
    planned = [plan(i) for i in range(48)]
    assert {(p.endpoint, p.kind, p.stream) for p in planned} == {
        (e, k, s) for e in ENDPOINTS for k in KINDS for s in (False, True)
    }
    assert len({p.body for p in planned}) == 48
    assert sum(p.disconnect for p in (plan(i) for i in range(500))) == 10


def test_a_tiny_soak_reconciles_every_request_with_its_row(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.soak",
            "--requests",
            "300",
            "--rate",
            "100",
            "--database",
            "sqlite",
            "--disconnect-every",
            "25",
            "--out",
            str(out),
        ],
        capture_output=True,
        timeout=120,
    )
    text = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, text
    r = json.loads(out.read_text())
    assert r["command"].endswith("--out " + str(out))
    assert r["sent"] == 300 and r["rows"] == 300 and r["unanswered"] == {}
    assert sum(r["answered"].values()) + r["disconnected"] == 300
    # 12 planned; one that meets an injected error status first is answered, not left
    assert 9 <= r["disconnected"] == r["rows_by_status"]["499 client_disconnected"] <= 12
    assert r["answered_without_row"] == 0 and r["status_mismatch"] == 0
    faults = {k for k in r["rows_by_status"] if not k.startswith(("200", "499"))}
    assert faults, r["rows_by_status"]  # the simulator's injected errors reached the ledger
    assert r["rss_warmup_mib"] > 0 and r["fds_warmup"] > 0 and r["samples"]
    assert "RSS" in text and "open descriptors" in text and "PASS" in text
