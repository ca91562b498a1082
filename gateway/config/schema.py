"""The config file's top level: `GatewayConfig`, which holds every section, and the checks
that span sections (unique names, references between providers, models, routes and tasks)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.config.base import _Strict
from gateway.config.routes import EvidenceConfig, ReliabilityConfig, RouteConfig, TaskConfig
from gateway.config.service import (
    AuthConfig,
    FinanceConfig,
    GovernanceConfig,
    LedgerConfig,
    LimitsConfig,
    LoggingConfig,
    ResponsesConfig,
    ServerConfig,
    SimulatorConfig,
)
from gateway.config.upstreams import ModelConfig, ProviderConfig


class GatewayConfig(_Strict):
    database_url: str = "sqlite+aiosqlite:///./gateway.db"
    max_request_body_mb: float = Field(32, gt=0)
    # How long an idle client connection stays open. Longer than the clients' own pools (httpx,
    # under the OpenAI and Anthropic SDKs, 5 s; aiohttp 15 s), so they retire a connection
    # before the gateway closes it under a request being sent; nginx's default is also 75 s.
    # uvicorn's own default, 5 s, raced httpx's and cut requests as "Server disconnected".
    client_keepalive_s: int = Field(75, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    simulator: SimulatorConfig | None = None
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    providers: tuple[ProviderConfig, ...] = Field(min_length=1)
    models: tuple[ModelConfig, ...] = Field(min_length=1)
    routes: tuple[RouteConfig, ...] = ()
    tasks: tuple[TaskConfig, ...] = ()
    evidence: EvidenceConfig = Field(default_factory=lambda: EvidenceConfig())
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
            if r.quality is not None and r.shadow is None:
                raise ValueError(
                    f"routes[{i}].quality: needs `shadow:` on the route (its reference is what "
                    "agreement is measured against)"
                )
            if r.shadow is not None and r.shadow.reference not in models:
                raise ValueError(
                    f"routes[{i}].shadow.reference: unknown model {r.shadow.reference!r} "
                    f"(configured: {', '.join(sorted(models))})"
                )
        _unique("tasks", [t.name for t in self.tasks])
        for i, t in enumerate(self.tasks):
            if t.judge is not None and t.judge not in models:
                raise ValueError(
                    f"tasks[{i}].judge: unknown model {t.judge!r} "
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


def _unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{section}: the name {n!r} is used twice")
        seen.add(n)
