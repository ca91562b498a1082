"""SQLAlchemy 2.0 models of the ledger. The alembic migrations create exactly these tables."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from gateway.ledger.rollup import LATENCY, TTFT

PICO = Decimal(10) ** 12  # SQLite stores money in integer picodollars (1e-12 USD)


class Money(TypeDecorator[Decimal]):
    """Exact USD amounts whose SQL sums are exact too.

    PostgreSQL: NUMERIC(precision, 12) — `sum()` is exact and prints as a decimal.
    SQLite has no decimal type (NUMERIC affinity stores a REAL, and `sum()` over decimal text
    adds floats: `1.6575e-05`), so there the amount is an INTEGER of picodollars, the same
    12 decimal places: `sum()` is exact integer arithmetic (up to 2^63 picodollars, about
    9.2 million USD in one sum), read back here as a Decimal of USD. README: the ledger's money.
    """

    impl = Numeric(20, 12)
    cache_ok = True

    def __init__(self, precision: int = 20) -> None:
        super().__init__()
        self.precision = precision

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, 12, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_pico(value)
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite" and isinstance(value, int):
            return from_pico(value)
        return Decimal(str(value))


def from_pico(value: int) -> Decimal:
    """Integer picodollars as USD, without trailing zeros (a budget of 0.3 reads `0.3`, as
    the decimal text it was stored as before did) and never in exponent form."""
    d = Decimal(value).scaleb(-12).normalize()
    return d if d.as_tuple().exponent <= 0 else d.quantize(Decimal(1))  # type: ignore[operator]


def to_pico(value: Any) -> int:
    """USD (a Decimal, or its text) as integer picodollars, rounded half away from zero
    like PostgreSQL's NUMERIC(·, 12)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    # scaleb + to_integral: ~1 µs, as cheap as the decimal text it replaced (the SQLite sink
    # converts three amounts a row on the event loop); quantize was twice that
    return int(d.scaleb(12).to_integral_value(ROUND_HALF_UP))


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    endpoint: Mapped[str] = mapped_column(String(32))
    requested_model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100))
    upstream_model: Mapped[str | None] = mapped_column(String(200))
    stream: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    input_cost_usd: Mapped[Decimal] = mapped_column(Money)
    output_cost_usd: Mapped[Decimal] = mapped_column(Money)
    cost_usd: Mapped[Decimal] = mapped_column(Money)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    ttft_ms: Mapped[float | None] = mapped_column(Numeric(12, 3, asdecimal=False))
    latency_ms: Mapped[float] = mapped_column(Numeric(12, 3, asdecimal=False))
    upstream_request_id: Mapped[str | None] = mapped_column(String(200))
    route_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(100))
    # the columns whose values were cut or replaced to fit (comma-separated); NULL: none
    clipped: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_requests_created_at", "created_at"),
        Index("ix_requests_model_created", "requested_model", "created_at"),
        Index("ix_requests_team_created", "team", "created_at"),
        Index("ix_requests_key_created", "api_key_id", "created_at"),
    )


requests_table: Table = RequestRow.__table__  # type: ignore[assignment]


class DeadLetterRow(Base):
    """A ledger row the database refused for its data, kept with the refusal.

    `row` is the whole row as a JSON object (ASCII, so it can always be stored), for a person
    to repair and insert; the row id is the key, so a replayed journal dead-letters it once.
    """

    __tablename__ = "ledger_dead_letters"

    row_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text)
    row: Mapped[str] = mapped_column(Text)


dead_letters_table: Table = DeadLetterRow.__table__  # type: ignore[assignment]


class BenchRunRow(Base):
    """One `gateway bench` run: what was run against what, and every point's results."""

    __tablename__ = "bench_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    command: Mapped[str] = mapped_column(Text)
    target_url: Mapped[str] = mapped_column(String(500))
    workload: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_bench_runs_created_at", "created_at"),)


class GpuCalibrationRow(Base):
    """A provider's measured capacity (`gateway bench calibrate`); the newest one applies."""

    __tablename__ = "gpu_calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    provider: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str] = mapped_column(String(40), ForeignKey("bench_runs.id"))
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    output_tokens_per_s: Mapped[float] = mapped_column(Float)
    total_tokens_per_s: Mapped[float] = mapped_column(Float)
    slo: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_gpu_calibrations_provider_created", "provider", "created_at"),)


class TeamRow(Base):
    """A team: what its keys' requests are attributed to, with its own limits and budgets."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    budget_usd_day: Mapped[Decimal | None] = mapped_column(Money)
    budget_usd_month: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_teams_updated_at", "updated_at"),)


class ApiKeyRow(Base):
    """A virtual key. Its secret is never stored: only an HMAC of it (`key_hash`), looked up by
    equality, and the first characters for people to recognise it (`prefix`)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(100), ForeignKey("teams.name"))
    models: Mapped[list[str] | None] = mapped_column(JSON)  # allowed model/route names
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    budget_usd_day: Mapped[Decimal | None] = mapped_column(Money)
    budget_usd_month: Mapped[Decimal | None] = mapped_column(Money)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_api_keys_updated_at", "updated_at"),
        Index("ix_api_keys_team", "team"),
    )


class StoredResponseRow(Base):
    """A Responses API response kept for `previous_response_id` and `GET /v1/responses/{id}`.

    The JSON documents are stored as text: the gateway reads and writes them whole. `context`
    holds the earlier turns' items (so continuing a chain is one primary-key read), `input`
    this turn's input items, `output` the Response's output items, `response` the Response
    object without its output. `team` scopes visibility once keys exist."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team: Mapped[str | None] = mapped_column(String(100))
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    previous_response_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    context: Mapped[str] = mapped_column(Text)
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_responses_created_at", "created_at"),)


responses_table: Table = StoredResponseRow.__table__  # type: ignore[assignment]
bench_runs_table: Table = BenchRunRow.__table__  # type: ignore[assignment]
teams_table: Table = TeamRow.__table__  # type: ignore[assignment]
api_keys_table: Table = ApiKeyRow.__table__  # type: ignore[assignment]
gpu_calibrations_table: Table = GpuCalibrationRow.__table__  # type: ignore[assignment]


class UsageHourlyRow(Base):
    """PostgreSQL: the hourly rollup of `requests` that the finance reports read (see
    `rollup.py`, which maintains it). Dimensions hold '' where the ledger row has NULL."""

    __tablename__ = "usage_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    endpoint: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(100))
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money(24))

    __table_args__ = (
        PrimaryKeyConstraint(
            "hour", "endpoint", "provider", "model", "team", name="pk_usage_hourly"
        ),
        # the histograms' bucket counts, read by the reports through Core only
        *(Column(name, Integer, nullable=False) for name in (*LATENCY, *TTFT)),
    )


usage_hourly_table: Table = UsageHourlyRow.__table__  # type: ignore[assignment]
