"""The config's routing: routes and their policies and SLOs, the quality evidence behind them
(tasks, shadow sampling, the quality gate and what evidence may cost), and the executor's
reliability knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.base import _Strict


class SLOConfig(_Strict):
    ttft_p95_ms: float | None = Field(None, gt=0)


Comparator = Literal["label", "json_fields", "tool_call", "text"]


class TaskMatch(_Strict):
    """How a request is recognised as a task when it names none (header or `metadata.task`)."""

    # sha256 (hex) of the request's system prompt (see gateway/quality/tasks.py), or its first
    # 12+ characters: the `sp:…` name `gateway quality` shows for an unnamed task
    system_prompt_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{12,64}$")


class TaskConfig(_Strict):
    """A named task and how its answers are compared with the reference model's."""

    name: str = Field(min_length=1, max_length=100)
    match: TaskMatch = Field(default_factory=lambda: TaskMatch())
    # label: normalised text equality; json_fields: per-field agreement of two JSON answers;
    # tool_call: same function and arguments; text: token F1 / ROUGE-L similarity
    compare: Comparator = "text"
    # a model that grades the pair with a fixed rubric instead; off by default: it costs
    judge: str | None = None


class ShadowConfig(_Strict):
    """A sample of a route's traffic sent again, after the answer, to a reference model."""

    sample_rate: float = Field(0.05, ge=0, le=1)
    reference: str = Field(min_length=1)  # a configured model name
    max_usd_per_day: float = Field(5.0, ge=0)  # this route's shadow spend per UTC day
    max_concurrency: int = Field(4, ge=1)  # shadow calls in flight; past it samples are dropped


class EvidenceConfig(_Strict):
    """What the evidence (shadow and judge calls) may cost in all, and whose it is."""

    max_usd_per_day: float | None = Field(None, ge=0)  # every route's shadow calls together
    team: str | None = Field("evidence", max_length=100)  # the ledger's team on shadow rows
    sample_chars: int = Field(500, ge=0, le=10_000)  # of each answer, kept with its pair


class TaskBar(_Strict):
    """One task's own bar, where its comparator's scale differs (text similarity, say)."""

    min_agreement: float | None = Field(None, gt=0, le=1)
    min_samples: int | None = Field(None, ge=1)


class QualityGateConfig(_Strict):
    """A route's quality gate: a candidate cheaper than the route's shadow reference serves a
    task only when the lower bound of its agreement with the reference on that task (95%
    interval) is at or above `min_agreement` over at least `min_samples` pairs."""

    min_agreement: float = Field(0.95, gt=0, le=1)
    min_samples: int = Field(200, ge=1)
    # Before min_samples: explore — serve the cheap model anyway and shadow the task at
    # `explore_rate` (at least); reference — send the task to the reference and shadow the
    # cheap model beside it at `explore_rate`.
    unknown: Literal["explore", "reference"] = "explore"
    explore_rate: float = Field(0.5, gt=0, le=1)
    tasks: dict[str, TaskBar] = Field(default_factory=dict)  # per-task bars, by task name

    def bar(self, task: str) -> tuple[float, int]:
        """(min_agreement, min_samples) for `task`."""
        own = self.tasks.get(task)
        if own is None:
            return self.min_agreement, self.min_samples
        return (
            self.min_agreement if own.min_agreement is None else own.min_agreement,
            self.min_samples if own.min_samples is None else own.min_samples,
        )


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
    shadow: ShadowConfig | None = None
    quality: QualityGateConfig | None = None  # needs `shadow`: its reference is the yardstick


class ReliabilityConfig(_Strict):
    max_attempts: int = Field(3, ge=1)  # across candidates, per request
    backoff_s: float = Field(0.05, ge=0)  # before a retry; doubled each time, capped below
    max_backoff_s: float = Field(2.0, ge=0)
    max_retry_after_s: float = Field(5.0, ge=0)  # honour Retry-After up to this, else move on
    total_timeout_s: float = Field(300.0, gt=0)
    cooldown_failures: int = Field(3, ge=1)  # consecutive failures that open the breaker
    cooldown_s: float = Field(30.0, gt=0)  # then one probe request is let through
