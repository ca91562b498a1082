"""bench_runs and gpu_calibrations on SQLite and PostgreSQL: save, load, calibrate, read back."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from benchmarks.load.store import (
    NothingToCalibrate,
    RunNotFound,
    calibrate,
    list_runs,
    load_run,
    save_run,
)
from gateway.ledger.calibration import Calibration, latest_calibration, record_calibration
from gateway.ledger.db import create_engine


def _record(run_id: str, attainments: list[float]) -> dict[str, Any]:
    points = [
        {
            "label": f"concurrency={c}",
            "shape": {"concurrency": c, "rate": None, "burstiness": 1.0},
            "within_slo": a >= 0.99,
            "summary": {
                "completed": 100,
                "output_throughput": 100.0 * c,
                "total_token_throughput": 400.0 * c,
                "request_throughput": c / 2,
                "slo_attainment": a,
                "max_concurrent_requests": c,
                "request_goodput": float("nan"),
            },
        }  # stored as JSON null
        for c, a in zip((1, 8, 32), attainments, strict=True)
    ]
    return {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(),
        "command": "gateway bench run --sweep concurrency=1,8,32",
        "label": None,
        "target_url": "http://127.0.0.1:8000/v1",
        "direct_url": None,
        "model": "m",
        "server_version": "0.33.0",
        "endpoint": "chat",
        "stream": True,
        "ignore_eos": True,
        "workload": {"name": "chat"},
        "settings": {"slo": {"ttft_ms": 500.0, "tpot_ms": 50.0}, "slo_attainment": 0.99},
        "versions": {"python": "3.11"},
        "points": points,
        "best_point": None,
        "token_mix": {},
        "apis": [],
        "warnings": [],
    }


def test_runs_round_trip_and_calibrate(db_url: str) -> None:
    run_id = f"r-{uuid.uuid4().hex[:8]}"
    save_run(db_url, _record(run_id, [1.0, 0.995, 0.4]))
    run = load_run(db_url, run_id)
    assert run["command"].endswith("concurrency=1,8,32") and run["server_version"] == "0.33.0"
    assert [p["label"] for p in run["points"]] == [
        "concurrency=1",
        "concurrency=8",
        "concurrency=32",
    ]
    assert run["points"][0]["summary"]["request_goodput"] is None
    assert run_id in [r["id"] for r in list_runs(db_url)]
    cal = calibrate(db_url, run_id, "local-llama")
    assert (cal.max_concurrency, cal.output_tokens_per_s, cal.total_tokens_per_s) == (
        8,
        800.0,
        3200.0,
    )
    assert cal.slo == {
        "ttft_ms": 500.0,
        "tpot_ms": 50.0,
        "attainment": 0.99,
        "point": "concurrency=8",
    }
    # a looser attainment picks the higher point; the newest calibration wins
    calibrate(db_url, run_id, "local-llama", attainment=0.3)

    async def read() -> Calibration | None:
        engine = create_engine(db_url)
        try:
            return await latest_calibration(engine, "local-llama")
        finally:
            await engine.dispose()

    latest = asyncio.run(read())
    assert latest is not None and latest.max_concurrency == 32 and latest.run_id == run_id


def test_ordering_is_by_time_then_id(db_url: str) -> None:
    run_id = f"r-{uuid.uuid4().hex[:8]}"
    save_run(db_url, _record(run_id, [1.0, 1.0, 1.0]))
    provider = f"p-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)

    async def go() -> Calibration | None:
        engine = create_engine(db_url)
        try:
            await record_calibration(engine, Calibration(provider, run_id, 4, 1.0, 2.0, {}, now))
            await record_calibration(
                engine, Calibration(provider, run_id, 2, 1.0, 2.0, {}, now - timedelta(hours=1))
            )
            return await latest_calibration(engine, provider)
        finally:
            await engine.dispose()

    cal = asyncio.run(go())
    assert cal is not None and cal.max_concurrency == 4  # inserted first, but newer


def test_unknown_run_and_nothing_within_the_slo(db_url: str) -> None:
    with pytest.raises(RunNotFound):
        load_run(db_url, "no-such-run")
    run_id = f"r-{uuid.uuid4().hex[:8]}"
    save_run(db_url, _record(run_id, [0.5, 0.5, 0.5]))
    with pytest.raises(NothingToCalibrate, match="no point met the SLO"):
        calibrate(db_url, run_id, "local-llama")
