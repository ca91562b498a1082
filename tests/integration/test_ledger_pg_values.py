"""Rows reach PostgreSQL as one JSON text (ledger/sinks.py): every value must come back exactly
as the row held it — money to the last digit, instants, flags, NULLs, any text."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from gateway.ledger.db import create_engine
from gateway.ledger.shape import RowShape
from gateway.ledger.sinks import PostgresSink, rows_json
from tests.support import fetch_rows, ledger_row

SHAPE = RowShape()


async def test_values_round_trip_exactly(fresh_pg_url: str) -> None:
    when = datetime(2026, 12, 6, 13, 14, 15, 123456, tzinfo=UTC)
    values = dict(
        created_at=when,
        input_cost_usd=Decimal("0.000000001"),
        output_cost_usd=Decimal("12345.123456789012"),
        cost_usd=Decimal("12345.123456790012"),
        stream=True,
        usage_estimated=True,
        ttft_ms=0.125,
        latency_ms=1e-3,
        error_type=None,
        requested_model='a "quoted" \\ model, ünïcödé ✓ 模型',
        upstream_request_id="line\nbreak\ttab",
        prompt_tokens=2**31 - 1,
        team="t",
        api_key_id="key_1",
    )
    rows = [SHAPE.fit(ledger_row("x", **values))]
    sink = PostgresSink(create_engine(fresh_pg_url), SHAPE, timeout_s=5)
    assert await sink.insert(rows) == 1
    assert await sink.insert(rows) == 0  # idempotent: a replay writes nothing twice
    await sink.aclose()
    (got,) = await asyncio.to_thread(fetch_rows, fresh_pg_url)
    for name, want in values.items():
        assert got[name] == want, name


def test_money_travels_as_decimal_text_never_as_a_float() -> None:
    row = SHAPE.fit(ledger_row("x", cost_usd=Decimal("0.1")))
    assert b'"0.1"' in rows_json([row])
