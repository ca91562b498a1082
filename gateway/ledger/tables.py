"""SQLAlchemy 2.0 models of the ledger. The alembic migrations create exactly these tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine


class Money(TypeDecorator[Decimal]):
    """Exact USD amounts: NUMERIC(20, 12) where the database has it; text on SQLite.

    SQLite has no decimal type (NUMERIC affinity stores a REAL), so there the canonical
    decimal string is stored and read back into a Decimal without loss.
    """

    impl = Numeric(20, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 12, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format(Decimal(value), "f")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


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
    # a shadow call (quality evidence: the same request sent to a reference model after the
    # client's answer), and the client request it shadows. NULL in rows journaled before the
    # column existed, which were not shadow calls.
    shadow: Mapped[bool | None] = mapped_column(Boolean, server_default=false())
    shadow_of: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_requests_created_at", "created_at"),
        Index("ix_requests_shadow_of", "shadow_of"),
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


class QualityPairRow(Base):
    """One compared pair: a model's answer and the reference model's to the same request.

    `score` is in [0, 1]; `passed` is the verdict of a pass/fail comparator (label, tool_call,
    a judge) and NULL for a score comparator (text, json_fields). The samples are the answers'
    first characters (`evidence.sample_chars`), for a person to review. The costs are the two
    calls' ledger costs: what the model cost and what the reference would have."""

    __tablename__ = "quality_pairs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the shadow call's id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    task: Mapped[str] = mapped_column(String(100))
    route: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    comparator: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    request_id: Mapped[str] = mapped_column(String(64))  # the client's request
    shadow_request_id: Mapped[str] = mapped_column(String(64))  # the call that made the other
    model_cost_usd: Mapped[Decimal] = mapped_column(Money)
    reference_cost_usd: Mapped[Decimal] = mapped_column(Money)
    model_sample: Mapped[str | None] = mapped_column(Text)
    reference_sample: Mapped[str | None] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_quality_pairs_created_at", "created_at"),
        Index("ix_quality_pairs_task_model", "task", "model", "created_at"),
    )


quality_pairs_table: Table = QualityPairRow.__table__  # type: ignore[assignment]
responses_table: Table = StoredResponseRow.__table__  # type: ignore[assignment]
bench_runs_table: Table = BenchRunRow.__table__  # type: ignore[assignment]
teams_table: Table = TeamRow.__table__  # type: ignore[assignment]
api_keys_table: Table = ApiKeyRow.__table__  # type: ignore[assignment]
gpu_calibrations_table: Table = GpuCalibrationRow.__table__  # type: ignore[assignment]
