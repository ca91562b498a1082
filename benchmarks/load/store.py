"""Runs in the ledger database (`bench_runs`) and calibrations (`gpu_calibrations`).

The functions are blocking (each runs its own event loop) and bring the schema up to date
first with the same alembic migrations as `gateway db upgrade`, so `gateway bench` works on a
fresh SQLite file as well as on the gateway's PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select

from benchmarks.load.analysis import DEFAULT_ATTAINMENT, choose_calibration
from gateway.ledger.calibration import Calibration, record_calibration
from gateway.ledger.db import create_engine
from gateway.ledger.migrate import upgrade
from gateway.ledger.tables import bench_runs_table as runs


class RunNotFound(LookupError):
    pass


class NothingToCalibrate(ValueError):
    pass


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    # the JSON column gets plain JSON: NaN/inf become null, as in the JSON file
    plain: dict[str, Any] = orjson.loads(orjson.dumps(record))
    return plain


def save_run(db_url: str, record: dict[str, Any]) -> None:
    upgrade(db_url)

    async def go() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(runs).values(
                        id=record["run_id"],
                        created_at=datetime.fromisoformat(record["created_at"]),
                        command=record["command"],
                        target_url=record["target_url"],
                        workload=record["workload"]["name"],
                        settings=_jsonable(
                            {
                                k: record[k]
                                for k in (
                                    "label",
                                    "model",
                                    "direct_url",
                                    "endpoint",
                                    "stream",
                                    "ignore_eos",
                                    "settings",
                                    "workload",
                                    "server_version",
                                )
                            }
                        ),
                        results=_jsonable(
                            {
                                k: record[k]
                                for k in ("points", "best_point", "token_mix", "apis", "warnings")
                            }
                        ),
                        versions=record["versions"],
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(go())


def load_run(db_url: str, run_id: str) -> dict[str, Any]:
    """The run as `benchmarks.load.run` recorded it (settings and results merged back)."""
    upgrade(db_url)

    async def go() -> dict[str, Any] | None:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
        finally:
            await engine.dispose()
        if row is None:
            return None
        m = row._mapping
        return {
            "run_id": m["id"],
            "created_at": m["created_at"],
            "command": m["command"],
            "target_url": m["target_url"],
            "versions": m["versions"],
            **m["settings"],
            **m["results"],
        }

    run = asyncio.run(go())
    if run is None:
        raise RunNotFound(f"no benchmark run {run_id!r} in the database")
    return run


def calibrate(
    db_url: str, run_id: str, provider: str, attainment: float | None = None
) -> Calibration:
    """Write the capacity run `run_id` supports within its SLO as `provider`'s calibration."""
    run = load_run(db_url, run_id)
    settings = run.get("settings", {})
    att = (
        attainment if attainment is not None else settings.get("slo_attainment", DEFAULT_ATTAINMENT)
    )
    choice = choose_calibration(run, float(att))
    if choice is None:
        raise NothingToCalibrate(
            f"run {run_id}: no point met the SLO ({settings.get('slo') or 'none'} at {att:.0%})"
        )
    cal = Calibration(
        provider=provider,
        run_id=run_id,
        max_concurrency=choice.max_concurrency,
        output_tokens_per_s=choice.output_tokens_per_s,
        total_tokens_per_s=choice.total_tokens_per_s,
        slo={
            **settings.get("slo", {}),
            "attainment": att,
            "point": run["points"][choice.point]["label"],
        },
    )

    async def go() -> Calibration:
        engine = create_engine(db_url)
        try:
            return await record_calibration(engine, cal)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def list_runs(db_url: str, limit: int = 20) -> list[dict[str, Any]]:
    upgrade(db_url)

    async def go() -> list[dict[str, Any]]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                q = (
                    select(runs.c.id, runs.c.created_at, runs.c.workload, runs.c.target_url)
                    .order_by(runs.c.created_at.desc())
                    .limit(limit)
                )
                return [dict(r._mapping) for r in (await conn.execute(q)).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())
