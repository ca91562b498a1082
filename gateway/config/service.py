"""The config of the gateway's own machinery: the ledger writer, request limits, the simulator
child, stored Responses, auth, governance counters, finance reports, logging and the drain."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.base import _Strict


class LedgerConfig(_Strict):
    """The ledger writer: batching, durability, and when it counts as stuck (README: the
    ledger). Loss bounds of each `durability` mode are in the README."""

    queue_size: int = Field(50_000, ge=100)  # rows held in memory; past it, to the journal
    batch_size: int = Field(500, ge=1)
    # 10, not 100: at ~5,000 req/s a 100 ms batch is ~500 rows, built and inserted in one
    # burst that the requests behind it wait out (p99 at 10 concurrent ~6 ms against the
    # floor's ~2.5; 10 ms batches ~5). PostgreSQL sees up to 100 inserts/s a worker.
    flush_interval_ms: int = Field(10, ge=1)
    # async: rows go to the database from memory; the journal takes them when the database
    # has not for `journal_after_ms`, or memory is full. journal: every row is journaled
    # (fsynced in batches) before its insert. sync: as journal, and a response completes
    # only once its row's fsync is done (group commit: requests share one fsync).
    durability: Literal["async", "journal", "sync"] = "async"
    # default: next to the SQLite file (`gateway.db.ledger-journal`), else ./ledger-journal
    journal_dir: str | None = None
    journal_max_mb: float = Field(1024, gt=0)  # past it the journal refuses rows: not ready
    journal_segment_mb: float = Field(16, gt=0)
    journal_after_ms: int = Field(1000, ge=0)
    insert_timeout_s: float = Field(2.0, gt=0)  # per statement, connect included
    # /health/ready turns not-ready when rows have waited in memory this long with nothing
    # written (to the database or the journal)
    stall_after_s: float = Field(5.0, gt=0)
    sync_timeout_ms: int = Field(5000, ge=1)  # sync: the longest a response waits for its fsync

    def journal_path(self, database_url: str) -> Path:
        if self.journal_dir:
            return Path(self.journal_dir)
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database + ".ledger-journal")
        return Path("ledger-journal")


class LimitsConfig(_Strict):
    """What a request may be before the gateway refuses it (a 4xx in the endpoint's envelope,
    with a ledger row). Defaults are generous for real clients (Claude Code's long sessions,
    agents with many tool results) and far below what would hurt the gateway."""

    # JSON nesting of a body (the body itself is level 1). Tool schemas nest ~2 levels a
    # property; 64 leaves room for any real one. At most 200: orjson re-encodes 254 levels and
    # translations wrap a few more around a client's value.
    max_json_depth: int = Field(64, ge=2, le=200)
    # OpenAI refuses more than 2,048 chat messages, Anthropic more than 100,000
    max_messages: int = Field(10_000, ge=1)
    max_content_parts: int = Field(1_000, ge=1)  # a message's content list; Messages' system
    # The request's header block: bytes of names and values, and how many fields (431 beyond).
    # uvicorn's httptools parser bounds neither, so the edge does (api/middleware.py). Node
    # allows 16 KiB, nginx 4 × 8 KiB buffers; 64 KiB leaves room for long tokens and cookies.
    max_header_bytes: int = Field(65_536, ge=1024)
    max_headers: int = Field(100, ge=8)  # Apache's LimitRequestFields default


class SimulatorConfig(_Strict):
    """When present, `gateway serve` starts the upstream simulator as a child process."""

    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    profile: str = "instant"


class ResponsesConfig(_Strict):
    """Stored Responses (`store: true`): how long they are kept, how often old ones go."""

    retention_days: float = Field(30, gt=0)
    purge_interval_s: float = Field(3600, gt=0)


MIN_SECRET_CHARS = 16


def _secret(value: str | None, name: str) -> str | None:
    """Empty means unset (`${VAR:-}`); a short secret is refused rather than trusted."""
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"{name} must be at least {MIN_SECRET_CHARS} characters")
    return value


class AuthConfig(_Strict):
    """Who may call the gateway. No master key: auth is off (the demo)."""

    master_key: str | None = Field(None, repr=False)
    # The HMAC key virtual keys are hashed with. Unset: derived from master_key — then rotating
    # the master key invalidates every virtual key, so production sets it separately.
    key_hash_secret: str | None = Field(None, repr=False)
    # /metrics is open unless this is set; then it needs `Authorization: Bearer <token>`.
    metrics_token: str | None = Field(None, repr=False)
    # How often each replica reads key and team changes from the database.
    refresh_interval_s: float = Field(1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _check(self) -> AuthConfig:
        for name in ("master_key", "key_hash_secret", "metrics_token"):
            object.__setattr__(self, name, _secret(getattr(self, name), name))
        return self

    @property
    def enabled(self) -> bool:
        return self.master_key is not None


class GovernanceConfig(_Strict):
    """Budgets and rate limits: where their counters live and how reservations behave."""

    redis_key_prefix: str = Field("gw:", min_length=1)
    redis_timeout_s: float = Field(0.5, gt=0)  # a slower answer counts as Redis unreachable
    # A reservation not settled by then (its replica died) is released.
    reservation_ttl_s: float = Field(300.0, gt=0)
    # Past this fraction of a budget: the warning header, metric and log line; routes may degrade.
    soft_budget_fraction: float = Field(0.8, gt=0, le=1)


class FinanceConfig(_Strict):
    """Usage reports (gateway/finance/): self-hosted traffic is also priced at
    `reference_model` (a configured API model), its usage and cache rates as recorded, to
    show what self-hosting saved."""

    reference_model: str | None = None


class LoggingConfig(_Strict):
    access_log: Literal["json", "text", "off"] = "json"  # one line per API request, on stdout

    @field_validator("access_log", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        return "off" if v is False else v  # YAML 1.1 reads a bare `off` as false


class ServerConfig(_Strict):
    """How `gateway serve` stops (docs: README "Stopping: the drain").

    On SIGTERM /health/ready answers 503 at once while everything is still served for
    `drain_delay_s` (load balancers take a few seconds to notice and move traffic away);
    then the listening socket closes and requests in flight, streams included, have
    `drain_timeout_s` to finish. What is still running then ends with a 503 / an in-band
    error and a ledger row saying `gateway_shutdown`. Kubernetes' terminationGracePeriodSeconds
    must exceed their sum plus a few seconds for the ledger's last flush."""

    drain_delay_s: float = Field(5.0, ge=0)
    drain_timeout_s: float = Field(30.0, gt=0)
