"""Every Prometheus metric the gateway exports, on a registry passed in (tests get their own).

Names follow `gateway_<what>_<unit>`; labels come from closed sets (configured model and
provider names, status class, error type) — never keys, users or request ids. Buckets are sized
for LLM latencies, after vLLM's own (vllm/v1/metrics/loggers.py: time_to_first_token_seconds,
e2e_request_latency_seconds). Label children are cached per (model, provider) so the request
path does one dict lookup instead of prometheus-client's label resolution.

With several worker processes, prometheus-client's multiprocess mode is used
(PROMETHEUS_MULTIPROC_DIR set by the CLI before the workers start); `render()` then aggregates
every worker's files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from gateway.core import Usage
from gateway.errors import METRIC_ERROR_TYPES

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
)
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
TOKEN_KINDS = ("prompt", "completion", "cached_prompt", "cache_write", "reasoning")


@dataclass(slots=True)
class _Children:
    latency: Any
    ttft: Any
    cost: Any
    tokens: tuple[Any, ...]
    by_status: dict[str, Any]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        mp = multiprocess_dir() is not None
        self.requests = Counter(
            "gateway_requests",
            "Client requests by outcome",
            ["model", "provider", "status_class"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request received to response complete",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Streaming: time from request received to the first generated content",
            ["model", "provider"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens as reported by the upstream",
            ["model", "provider", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "gateway_cost_usd",
            "Cost in USD priced from upstream usage",
            ["model", "provider"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Failed upstream attempts by error type",
            ["model", "provider", "error_type"],
            registry=r,
        )
        self.ledger_rows = Counter(
            "gateway_ledger_rows_written",
            "Ledger rows inserted (from memory or replayed from the journal)",
            registry=r,
        )
        self.ledger_errors = Counter(
            "gateway_ledger_write_errors",
            "Failed ledger inserts: the database away or timing out (retried, then journaled)",
            registry=r,
        )
        self.ledger_dead_letters = Counter(
            "gateway_ledger_dead_lettered_rows",
            "Ledger rows the database refused for their data, kept in ledger_dead_letters",
            registry=r,
        )
        self.ledger_journaled = Counter(
            "gateway_ledger_journaled_rows", "Ledger rows appended to the local journal", registry=r
        )
        self.ledger_replayed = Counter(
            "gateway_ledger_replayed_rows",
            "Ledger rows inserted from the journal after an outage or a crash",
            registry=r,
        )
        self.ledger_dropped = Counter(
            "gateway_ledger_dropped_rows",
            "Ledger rows lost: memory full and the journal unusable (the gateway is not ready)",
            registry=r,
        )
        self.ledger_clipped = Counter(
            "gateway_ledger_clipped_rows",
            "Ledger rows with a value cut to fit its column (named in requests.clipped)",
            registry=r,
        )
        self.ledger_backlog = Gauge(
            "gateway_ledger_backlog_rows",
            "Ledger rows held in memory, not yet in the database",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ledger_oldest_age = Gauge(
            "gateway_ledger_oldest_row_age_seconds",
            "Age of the oldest ledger row not yet in the database (memory or journal)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ledger_journal_rows = Gauge(
            "gateway_ledger_journal_rows",
            "Ledger rows in the journal, not yet known to be in the database",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ledger_journal_bytes = Gauge(
            "gateway_ledger_journal_bytes",
            "Size of the ledger journal's segment files",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ledger_stalled = Gauge(
            "gateway_ledger_stalled",
            "1 when ledger rows are at risk (writer stalled or journal unusable): not ready",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.after_request_errors = Counter(
            "gateway_after_request_errors",
            "Failures of an after-request consumer (metrics, router learning); the ledger row "
            "is written regardless",
            ["consumer"],
            registry=r,
        )
        # governance: labels are closed sets (scope: key|team; never a key id or team name)
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Requests refused for their credential (reason: missing; invalid: malformed, "
            "unknown, expired or revoked; revoked: caught by the shared counters; forbidden: "
            "a virtual key on /admin)",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited",
            "Requests refused by a rate limit",
            ["scope", "limit"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "gateway_budget_refusals",
            "Requests refused by a hard budget",
            ["scope", "window"],
            registry=r,
        )
        self.budget_warnings = Counter(
            "gateway_budget_warnings",
            "Requests admitted past a soft budget",
            ["scope", "window"],
            registry=r,
        )
        self.redis_up = Gauge(
            "gateway_governance_redis_up",
            "1 while limits and budgets are shared through Redis, 0 while this replica counts "
            "on its own (Redis unreachable or not configured)",
            registry=r,
            multiprocess_mode="min",
        )
        self.redis_calls = Counter(
            "gateway_governance_redis_calls",
            "Script calls to Redis (each admits or settles a batch of requests)",
            registry=r,
        )
        self.redis_operations = Counter(
            "gateway_governance_redis_operations",
            "Admissions, settlements and revocations sent to Redis; over calls: the batching",
            registry=r,
        )
        self.redis_fallbacks = Counter(
            "gateway_governance_redis_fallbacks",
            "Times Redis became unreachable and counting fell back to this replica",
            registry=r,
        )
        # quality evidence: route is a configured route name; outcome a closed set (shadow.py)
        self.shadow_samples = Counter(
            "gateway_shadow_samples",
            "Requests sampled for a shadow call to the reference model, by what became of them "
            "(compared; dropped_concurrency, dropped_cap, dropped_budget: not sent; failed)",
            ["route", "outcome"],
            registry=r,
        )
        self.shadow_cost = Counter(
            "gateway_shadow_cost_usd",
            "What shadow calls to reference models cost (the evidence's spend)",
            ["route"],
            registry=r,
        )
        self._children: dict[tuple[str, str], _Children] = {}
        self._multiprocess = mp

    def _for(self, model: str, provider: str) -> _Children:
        c = self._children.get((model, provider))
        if c is None:
            c = _Children(
                latency=self.latency.labels(model, provider),
                ttft=self.ttft.labels(model, provider),
                cost=self.cost.labels(model, provider),
                tokens=tuple(self.tokens.labels(model, provider, k) for k in TOKEN_KINDS),
                by_status={},
            )
            self._children[(model, provider)] = c
        return c

    def observe(
        self,
        *,
        model: str,
        provider: str,
        status: int,
        latency_s: float,
        ttft_s: float | None,
        usage: Usage | None,
        cost_usd: Decimal | None,
    ) -> None:
        c = self._for(model, provider)
        cls = f"{status // 100}xx"
        counter = c.by_status.get(cls)
        if counter is None:
            counter = c.by_status[cls] = self.requests.labels(model, provider, cls)
        counter.inc()
        c.latency.observe(latency_s)
        if ttft_s is not None:
            c.ttft.observe(ttft_s)
        if usage is not None:
            for child, n in zip(
                c.tokens,
                (
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.cached_prompt_tokens,
                    usage.cache_write_tokens,
                    usage.reasoning_tokens,
                ),
                strict=True,
            ):
                if n:
                    child.inc(n)
        if cost_usd:
            c.cost.inc(float(cost_usd))

    def upstream_error(self, model: str, provider: str, error_type: str) -> None:
        label = error_type if error_type in METRIC_ERROR_TYPES else "other"  # a closed set
        self.upstream_errors.labels(model, provider, label).inc()

    def client_error(self, status: int) -> None:
        # requests refused before a model was resolved: no model label to give them
        self.requests.labels("", "", f"{status // 100}xx").inc()

    def render(self) -> tuple[bytes, str]:
        if self._multiprocess:
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
            return generate_latest(reg), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
