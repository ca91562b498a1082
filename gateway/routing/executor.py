"""Executing a `Decision`: attempts down the ordered targets, retries, cooldowns.

The executor tries the decision's targets in order (at most `reliability.max_attempts`, within
`total_timeout_s`), moving on when an attempt fails with a retryable error (429, 5xx, 529,
connection errors, timeouts) and stopping at the first non-retryable one (a 400 would fail the
same everywhere). Each deployment (provider + replica) has a circuit breaker: after
`cooldown_failures` consecutive failures — or a 429 with Retry-After — it is skipped for
`cooldown_s` (or the Retry-After), then one probe request is let through (half-open); success
closes it. Streams are only retried before their first byte reached the client: the caller's
attempt function opens the stream and checks its status, nothing later comes back here.
If every attempt fails, one error reports them all, keeping their status when they agree
(a 429 stays a 429).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.config import ReliabilityConfig
from gateway.core import Target
from gateway.errors import GatewayError, UpstreamConnectionError, UpstreamError

T = TypeVar("T")


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class Breakers:
    """Per-deployment circuit breakers (a deployment is one provider entry)."""

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._failures, self._cooldown, self._clock = failures, cooldown_s, clock
        self._state: dict[str, _Breaker] = {}

    def available(self, key: str) -> bool:
        """Closed, or half-open with no probe in flight. No side effects."""
        b = self._state.get(key)
        return b is None or (self._clock() >= b.open_until and not b.probing)

    def begin(self, key: str) -> None:
        b = self._state.get(key)
        if b is not None and b.open_until:
            b.probing = True  # half-open: this attempt is the probe

    def success(self, key: str) -> None:
        self._state.pop(key, None)

    def failure(self, key: str, retry_after_s: float | None = None) -> None:
        b = self._state.setdefault(key, _Breaker())
        b.failures += 1
        if b.probing or b.failures >= self._failures or retry_after_s:
            b.open_until = self._clock() + (retry_after_s or self._cooldown)
        b.probing = False

    def is_open(self, key: str) -> bool:
        b = self._state.get(key)
        return b is not None and self._clock() < b.open_until


class AllAttemptsFailed(UpstreamError):
    def __init__(self, errors: list[tuple[Target, GatewayError]]) -> None:
        statuses = {e.status_code for _, e in errors}
        parts = "; ".join(
            f"{t.model}@{t.provider.name}: {e.status_code} {e.message}" for t, e in errors
        )
        super().__init__(
            f"all {len(errors)} attempts failed: {parts}", headers=errors[-1][1].headers
        )
        last = errors[-1][1]
        self.status_code = last.status_code if len(statuses) == 1 else 502
        self.type = last.type if len(statuses) == 1 else "upstream_error"
        self.code = last.code if len(statuses) == 1 else "all_attempts_failed"


def retry_after_s(error: GatewayError) -> float | None:
    value = error.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: treat as no hint


@dataclass(slots=True)
class Attempted(Generic[T]):
    result: T
    target: Target
    api_base: str
    attempts: int


class Executor:
    def __init__(
        self,
        reliability: ReliabilityConfig,
        pick_replica: Callable[[Target], str] | None = None,
        on_start: Callable[[Target, str], None] | None = None,
        on_end: Callable[[Target, str, bool], None] | None = None,
        on_unreachable: Callable[[Target, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = reliability
        self.breakers = Breakers(reliability.cooldown_failures, reliability.cooldown_s, clock)
        self._pick = pick_replica or (lambda t: t.provider.api_base)
        self._on_start = on_start or (lambda t, b: None)
        self._on_end = on_end or (lambda t, b, ok: None)
        self._on_unreachable = on_unreachable or (lambda t, b: None)
        self._clock = clock

    def end(self, target: Target, api_base: str, ok: bool) -> None:
        """For streams: the attempt that succeeded ends when its stream does."""
        self._on_end(target, api_base, ok)

    async def run(
        self,
        targets: tuple[Target, ...],
        attempt: Callable[[Target, str], Awaitable[T]],
        on_failure: Callable[[Target, GatewayError], None],
        *,
        hold: bool = False,  # keep the successful attempt open (a stream); caller calls end()
    ) -> Attempted[T]:
        cfg = self.config
        deadline = self._clock() + cfg.total_timeout_s
        errors: list[tuple[Target, GatewayError]] = []
        ready = [t for t in targets if self.breakers.available(t.provider.name)]
        plan = (ready or list(targets[:1]))[: cfg.max_attempts]  # all cooling down: try anyway
        for i, target in enumerate(plan):
            if errors and self._clock() >= deadline:
                break
            base = self._pick(target)
            self.breakers.begin(target.provider.name)
            self._on_start(target, base)
            try:
                result = await attempt(target, base)
            except GatewayError as e:
                self._on_end(target, base, False)
                if isinstance(e, UpstreamConnectionError):
                    self._on_unreachable(target, base)  # counts toward taking a replica out
                on_failure(target, e)
                errors.append((target, e))
                hint = retry_after_s(e)
                self.breakers.failure(
                    target.provider.name, min(hint, cfg.max_retry_after_s) if hint else None
                )
                if not e.retryable:
                    e.attempts, e.target = len(errors), target
                    raise
                if i + 1 < len(plan):
                    await asyncio.sleep(
                        min(cfg.backoff_s * 2 ** (len(errors) - 1), cfg.max_backoff_s)
                    )
                continue
            if not hold:
                self._on_end(target, base, True)
            self.breakers.success(target.provider.name)
            return Attempted(result, target, base, len(errors) + 1)
        final: GatewayError = errors[0][1] if len(errors) == 1 else AllAttemptsFailed(errors)
        final.attempts, final.target = len(errors), errors[-1][0]
        raise final
