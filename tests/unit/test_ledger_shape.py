"""Values made to fit their columns when the row is built, and the journal's row encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ledger.shape import INT_MAX, RowShape
from tests.support import ledger_row

SHAPE = RowShape()


def _as_dict(values: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(SHAPE.columns, values, strict=True))


def test_a_row_that_fits_is_kept_as_it_is() -> None:
    row = ledger_row(1, route_reason="x" * 10_000, ttft_ms=12.5)
    fitted = _as_dict(SHAPE.fit(row))
    assert fitted == {**row, "clipped": None}
    assert not SHAPE.was_clipped(SHAPE.fit(row))


def test_over_long_strings_are_cut_to_their_column_and_named() -> None:
    row = ledger_row(
        1, requested_model="m" * 250, upstream_request_id="i" * 300, error_type="t" * 200
    )
    fitted = _as_dict(SHAPE.fit(row))
    assert fitted["requested_model"] == "m" * 199 + "…"
    assert len(str(fitted["upstream_request_id"])) == 200
    assert len(str(fitted["error_type"])) == 100
    assert fitted["clipped"] == "requested_model,error_type,upstream_request_id"


def test_characters_postgresql_cannot_store_are_replaced() -> None:
    row = ledger_row(1, requested_model="a\x00b", team="x\ud800y", route_reason="ok\x00")
    fitted = _as_dict(SHAPE.fit(row))
    assert fitted["requested_model"] == "a\ufffdb"
    assert str(fitted["team"]).startswith("x") and "\ud800" not in str(fitted["team"])
    str(fitted["team"]).encode("utf-8")  # encodable now
    assert fitted["route_reason"] == "ok\ufffd"
    assert fitted["clipped"] == "requested_model,route_reason,team"


def test_numbers_are_clamped_to_their_column() -> None:
    row = ledger_row(
        1,
        prompt_tokens=3_000_000_000,
        completion_tokens=-(2**40),
        cost_usd=Decimal("123456789.5"),
        latency_ms=float("inf"),
        ttft_ms=float("nan"),
    )
    fitted = _as_dict(SHAPE.fit(row))
    assert fitted["prompt_tokens"] == INT_MAX and fitted["completion_tokens"] == -(2**31)
    assert fitted["cost_usd"] == Decimal("99999999.999999999999")
    assert fitted["latency_ms"] == 0.0 and fitted["ttft_ms"] is None
    assert fitted["clipped"] == "prompt_tokens,completion_tokens,cost_usd,ttft_ms,latency_ms"


def test_the_journal_encoding_round_trips_exactly() -> None:
    row = ledger_row(
        1,
        created_at=datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
        cost_usd=Decimal("0.000001350000"),
        ttft_ms=12.345,
        requested_model="é ☃ 模型",
    )
    values = SHAPE.fit(row)
    line = SHAPE.encode([values])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = SHAPE.decoder(SHAPE.columns)(line[:-1])
    assert back == values
    assert isinstance(back[SHAPE.columns.index("cost_usd")], Decimal)


def test_a_journal_of_another_schema_is_read_by_column_name() -> None:
    """A journal written before a migration added a column (or after one dropped it)."""
    older = [c for c in SHAPE.columns if c != "team"] + ["retired"]
    values = SHAPE.fit(ledger_row(1, team="core"))
    by_name = _as_dict(values)
    line = orjson.dumps([by_name.get(c, "gone") for c in older], default=str)
    back = _as_dict(SHAPE.decoder(older)(line))
    assert back["team"] is None
    assert back["id"] == "r1" and back["cost_usd"] == by_name["cost_usd"]


class _Text(str):
    pass


ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    2**31,
    -(2**31) - 1,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    1e12,
    Decimal("0.5"),
    Decimal("NaN"),
    Decimal("-1e9"),
    "",
    "ok",
    "x" * 40,
    "y" * 250,
    "a\x00b",
    "\ud800",
    "é",
    _Text("sub"),
    b"bytes",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SHAPE.columns), st.sampled_from(ODD_VALUES)))
def test_the_quick_checks_a_kind_of_column_fit_rows_as_the_column_checks_do(
    odd: dict[str, object],
) -> None:
    """`fit` tests the columns of one kind together first; a row must come out exactly as the
    columns' own checks and fitters alone make it (the quick test is never looser)."""
    row = ledger_row(1, **odd)
    try:
        expected = _fit_column_by_column(row)
    except (TypeError, ValueError, ArithmeticError):  # some values no fitter takes
        with pytest.raises((TypeError, ValueError, ArithmeticError)):
            SHAPE.fit(row)
        return
    assert repr(SHAPE.fit(row)) == repr(expected)


def _fit_column_by_column(row: dict[str, object]) -> tuple[object, ...]:
    values = [row.get(name) for name in SHAPE.columns]
    clipped = []
    for i, fits, fitter in sorted(SHAPE._checks, key=lambda c: c[0]):
        if not fits(values[i]):
            values[i], changed = fitter(values[i])
            if changed:
                clipped.append(SHAPE.columns[i])
    values[SHAPE.columns.index("clipped")] = ",".join(clipped) or None
    return tuple(values)
