"""`gateway quality`: the report over the configured ledger database."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import load_config
from gateway.ledger.db import create_engine
from gateway.quality.report import FORMATS, quality_report, render


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since: {value!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_report(config_path: Path, since: str | None, task: str | None, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    url = load_config(config_path, os.environ).database_url
    when = parse_since(since)

    async def run() -> str:
        engine = create_engine(url)
        try:
            return render(await quality_report(engine, when, task), fmt)
        finally:
            await engine.dispose()

    return asyncio.run(run())
