"""The YAML config: schema (strict: unknown keys are errors), `${VAR}` expansion, cross-checks.

`load_config(path)` returns a frozen `GatewayConfig` or raises `ConfigError` whose message names
the file and the key. The keys are a contract with users and with tools that generate configs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ProviderKind = Literal["openai", "vllm", "anthropic", "gemini"]

DEFAULT_API_BASES: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


DEFAULT_CONFIG = Path("config/demo.yaml")  # `--config`'s default, relative to the working dir


class ConfigError(Exception):
    """A config problem a user must fix; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GPUConfig(_Strict):
    """The self-hosted GPUs behind a provider: a fixed cost, amortised per token."""

    name: str
    count: int = Field(1, ge=1)
    hourly_usd: float = Field(ge=0)
    # Aggregate tokens/s (input + output) the pool sustains within its SLO: what amortises the
    # hourly price into $/token. `gateway bench calibrate` measures it; until then this value.
    throughput_tokens_per_s: float = Field(1500.0, gt=0)
    # Concurrent requests the pool serves within its SLO (calibrated the same way).
    max_concurrency: int | None = Field(None, ge=1)


class CapacityConfig(_Strict):
    """When a vLLM replica counts as full, and how it is watched (its /metrics, /health)."""

    scrape_interval_s: float = Field(1.0, gt=0)
    max_waiting: int = Field(0, ge=0)  # full when vLLM reports more queued requests than this
    max_predicted_ttft_ms: float | None = Field(None, gt=0)
    max_in_flight: int | None = Field(None, ge=1)  # the gateway's own outstanding requests
    unhealthy_after: int = Field(3, ge=1)  # consecutive failed scrapes take a replica out


class ProviderConfig(_Strict):
    name: str = Field(min_length=1)
    kind: ProviderKind
    api_base: str = ""  # defaults by kind (DEFAULT_API_BASES); required for vllm
    api_key: str | None = Field(None, repr=False)  # never in a repr, hence never in a log line
    anthropic_version: str = "2023-06-01"  # kind: anthropic only
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    max_connections: int = Field(1000, ge=1)
    # An idle pooled connection is dropped after this long. It must stay below the upstream's
    # own keep-alive, or a request can go out on a socket the server is closing (a 502 "closed
    # the connection"): vLLM's API server keeps idle connections 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE
    # in vllm/envs.py, passed to uvicorn as timeout_keep_alive), aiohttp's pool 15 s by default.
    keepalive_s: float = Field(4.0, gt=0)
    simulated: bool = False  # shown in /v1/models and the startup log so nobody mistakes it
    gpu: GPUConfig | None = None
    # More replicas of the same server (vLLM): api_base is the first; requests go to the least
    # loaded healthy one.
    replicas: tuple[str, ...] = ()
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    # The upstream serves OpenAI's Responses API (`{api_base}/responses`): `/v1/responses`
    # requests are sent to it as the client wrote them instead of through chat completions.
    # kind: openai or vllm only.
    responses_api: bool = False

    @property
    def api_bases(self) -> tuple[str, ...]:
        return (self.api_base, *self.replicas)

    @property
    def self_hosted(self) -> bool:
        return self.gpu is not None

    @model_validator(mode="after")
    def _default_api_base(self) -> ProviderConfig:
        if not self.api_base:
            if self.kind not in DEFAULT_API_BASES:
                raise ValueError(f"api_base is required for kind {self.kind!r}")
            object.__setattr__(self, "api_base", DEFAULT_API_BASES[self.kind])
        if self.responses_api and self.kind not in ("openai", "vllm"):
            raise ValueError(f"responses_api: kind {self.kind!r} has no Responses API")
        return self


class PriceOverride(_Strict):
    """USD per 1M tokens; overrides (or stands in for) litellm's price table entry."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)


class Capabilities(_Strict):
    context_window: int = Field(128_000, ge=1)
    tools: bool = True
    vision: bool = False
    json_mode: bool = True


class PromptCacheConfig(_Strict):
    ttl_s: float = Field(300.0, ge=0)
    min_tokens: int = Field(1024, ge=0)


class SLOConfig(_Strict):
    ttft_p95_ms: float | None = Field(None, gt=0)


class RouteConfig(_Strict):
    """A client-facing model name whose requests a policy spreads over candidate models."""

    name: str = Field(min_length=1)
    policy: Literal["cost", "local-first", "latency", "ordered"] = "local-first"
    candidates: tuple[str, ...] = Field(min_length=1)
    slo: SLOConfig = Field(default_factory=lambda: SLOConfig())
    # marginal: an owned GPU with headroom costs nothing more per request; amortized: charge its
    # share of the hourly price. The ledger always records the amortized cost.
    local_cost_mode: Literal["marginal", "amortized"] = "marginal"
    # Past the caller's team soft budget, keep only candidates whose input and output prices
    # are both at or below this (USD per 1M tokens) instead of refusing; None: no degrading.
    degrade_max_usd_per_mtok: float | None = Field(None, ge=0)


class ReliabilityConfig(_Strict):
    max_attempts: int = Field(3, ge=1)  # across candidates, per request
    backoff_s: float = Field(0.05, ge=0)  # before a retry; doubled each time, capped below
    max_backoff_s: float = Field(2.0, ge=0)
    max_retry_after_s: float = Field(5.0, ge=0)  # honour Retry-After up to this, else move on
    total_timeout_s: float = Field(300.0, gt=0)
    cooldown_failures: int = Field(3, ge=1)  # consecutive failures that open the breaker
    cooldown_s: float = Field(30.0, gt=0)  # then one probe request is let through


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    provider: str
    upstream_model: str | None = None
    price: PriceOverride | None = None
    # the price table key when it differs from upstream_model (e.g. "gemini/gemini-2.0-flash")
    price_key: str | None = None
    # Anthropic requires max_tokens; used when the client sends neither max_tokens nor
    # max_completion_tokens
    default_max_tokens: int = Field(4096, ge=1)
    # Anthropic: mark a long static system prompt as cacheable (cache_control: ephemeral)
    auto_cache_system_prompt: bool = False
    # routing: what the model can do and how good it is
    quality_tier: int = Field(1, ge=0)
    capabilities: Capabilities = Field(default_factory=lambda: Capabilities())
    # the provider's prompt cache, for expected-cost estimates: a prefix of at least
    # `min_tokens` seen within `ttl_s` is expected to be read from cache
    prompt_cache: PromptCacheConfig = Field(default_factory=lambda: PromptCacheConfig())

    @property
    def target_model(self) -> str:
        return self.upstream_model or self.name


class LedgerConfig(_Strict):
    """The ledger writer: batching, durability, and when it counts as stuck (README: the
    ledger). Loss bounds of each `durability` mode are in the README."""

    queue_size: int = Field(50_000, ge=100)  # rows held in memory; past it, to the journal
    batch_size: int = Field(500, ge=1)
    flush_interval_ms: int = Field(100, ge=1)
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


class GatewayConfig(_Strict):
    database_url: str = "sqlite+aiosqlite:///./gateway.db"
    max_request_body_mb: float = Field(32, gt=0)
    # How long an idle client connection stays open. Longer than the clients' own pools (httpx,
    # under the OpenAI and Anthropic SDKs, 5 s; aiohttp 15 s), so they retire a connection
    # before the gateway closes it under a request being sent; nginx's default is also 75 s.
    # uvicorn's own default, 5 s, raced httpx's and cut requests as "Server disconnected".
    client_keepalive_s: int = Field(75, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    simulator: SimulatorConfig | None = None
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    providers: tuple[ProviderConfig, ...] = Field(min_length=1)
    models: tuple[ModelConfig, ...] = Field(min_length=1)
    routes: tuple[RouteConfig, ...] = ()
    auth: AuthConfig = Field(default_factory=lambda: AuthConfig())
    # Counters, reservations and revocations shared by every replica; unset: kept in process.
    redis_url: str | None = Field(None, repr=False)
    governance: GovernanceConfig = Field(default_factory=lambda: GovernanceConfig())
    logging: LoggingConfig = Field(default_factory=lambda: LoggingConfig())
    finance: FinanceConfig = Field(default_factory=lambda: FinanceConfig())

    @model_validator(mode="after")
    def _cross_check(self) -> GatewayConfig:
        if not self.redis_url:  # `${REDIS_URL:-}` left empty
            object.__setattr__(self, "redis_url", None)
        _unique("providers", [p.name for p in self.providers])
        _unique("models", [m.name for m in self.models])
        names = {p.name for p in self.providers}
        for i, m in enumerate(self.models):
            if m.provider not in names:
                raise ValueError(
                    f"models[{i}].provider: unknown provider {m.provider!r} "
                    f"(configured: {', '.join(sorted(names))})"
                )
        _unique("routes", [r.name for r in self.routes])
        models = {m.name for m in self.models}
        for i, r in enumerate(self.routes):
            if r.name in models:
                raise ValueError(f"routes[{i}].name: {r.name!r} is already a model name")
            for c in r.candidates:
                if c not in models:
                    raise ValueError(
                        f"routes[{i}].candidates: unknown model {c!r} "
                        f"(configured: {', '.join(sorted(models))})"
                    )
        ref = self.finance.reference_model
        if ref is not None:
            if ref not in models:
                raise ValueError(
                    f"finance.reference_model: unknown model {ref!r} "
                    f"(configured: {', '.join(sorted(models))})"
                )
            m = next(m for m in self.models if m.name == ref)
            if self.provider(m.provider).self_hosted:
                raise ValueError(
                    f"finance.reference_model: {ref!r} is self-hosted; name an API model"
                )
        return self

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_request_body_mb * 1024 * 1024)


def with_calibrations(
    config: GatewayConfig, measured: Mapping[str, tuple[float, int | None]]
) -> GatewayConfig:
    """The config with measured GPU throughput (tokens/s) and concurrency per provider name,
    as `gateway bench calibrate` recorded them, in place of the configured guesses."""
    providers = []
    for p in config.providers:
        if p.gpu is not None and p.name in measured:
            tps, conc = measured[p.name]
            gpu = p.gpu.model_copy(
                update={
                    "throughput_tokens_per_s": tps,
                    "max_concurrency": conc or p.gpu.max_concurrency,
                }
            )
            p = p.model_copy(update={"gpu": gpu})
        providers.append(p)
    return config.model_copy(update={"providers": tuple(providers)})


def _unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{section}: the name {n!r} is used twice")
        seen.add(n)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; a missing VAR names its key."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where or 'value'}: environment variable ${{{name}}} is not set")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: expand_env(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(raw: Any, *, source: str, environ: Mapping[str, str]) -> GatewayConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        data = expand_env(raw, environ)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if environ.get("GATEWAY_DATABASE_URL"):
        data["database_url"] = environ["GATEWAY_DATABASE_URL"]
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: invalid config\n{_format(e)}") from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file ({e.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(raw, source=str(p), environ=os.environ if environ is None else environ)


def _format(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)
