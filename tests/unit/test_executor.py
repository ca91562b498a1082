"""The executor and its circuit breakers, with a fake clock and fake attempts."""

from __future__ import annotations

import pytest

from gateway.config import ProviderConfig, ReliabilityConfig
from gateway.core import Price, Target
from gateway.errors import GatewayError, InvalidRequest, UpstreamHTTPError, UpstreamTimeout
from gateway.routing.executor import AllAttemptsFailed, Breakers, Executor


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def target(name: str) -> Target:
    p = ProviderConfig(name=f"p-{name}", kind="openai", api_base=f"http://127.0.0.1:1/{name}")
    return Target(name, name, p, Price.per_mtok(1, 1))


A, B, C = target("a"), target("b"), target("c")


def executor(clock: Clock, **cfg: object) -> Executor:
    return Executor(ReliabilityConfig.model_validate({"backoff_s": 0, **cfg}), clock=clock)


def attempts_with(failures: dict[str, GatewayError]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    async def attempt(t: Target, base: str) -> str:
        calls.append(t.model)
        if t.model in failures:
            raise failures[t.model]
        return t.model

    return attempt, calls


async def test_moves_down_the_list_on_retryable_errors() -> None:
    ex = executor(Clock())
    attempt, calls = attempts_with(
        {"a": UpstreamTimeout("slow"), "b": UpstreamHTTPError(503, "busy", provider="p-b")}
    )
    failed: list[str] = []
    done = await ex.run((A, B, C), attempt, lambda t, e: failed.append(t.model))
    assert (done.result, done.attempts, calls, failed) == ("c", 3, ["a", "b", "c"], ["a", "b"])


async def test_stops_at_a_non_retryable_error() -> None:
    ex = executor(Clock())
    attempt, calls = attempts_with({"a": InvalidRequest("bad")})
    with pytest.raises(InvalidRequest):
        await ex.run((A, B), attempt, lambda t, e: None)
    assert calls == ["a"]


async def test_max_attempts_and_the_aggregate_error_keeps_a_common_status() -> None:
    ex = executor(Clock(), max_attempts=2)
    e429 = UpstreamHTTPError(429, "slow down", provider="x")
    attempt, calls = attempts_with({"a": e429, "b": e429, "c": e429})
    with pytest.raises(AllAttemptsFailed) as info:
        await ex.run((A, B, C), attempt, lambda t, e: None)
    assert calls == ["a", "b"] and info.value.status_code == 429 and info.value.attempts == 2
    mixed, _ = attempts_with({"a": e429, "b": UpstreamTimeout("t")})
    with pytest.raises(AllAttemptsFailed) as info:
        await executor(Clock()).run((A, B), mixed, lambda t, e: None)
    assert info.value.status_code == 502


def test_breaker_opens_after_consecutive_failures_then_half_opens() -> None:
    clock = Clock()
    b = Breakers(failures=2, cooldown_s=10, clock=clock)
    b.failure("p")
    assert b.available("p")
    b.failure("p")
    assert not b.available("p") and b.is_open("p")
    clock.t += 10
    assert b.available("p")  # half-open
    b.begin("p")
    assert not b.available("p")  # only one probe at a time
    b.failure("p")  # the probe failed: open again
    assert not b.available("p")
    clock.t += 10
    b.begin("p")
    b.success("p")
    assert b.available("p") and not b.is_open("p")


def test_retry_after_opens_the_breaker_for_that_long() -> None:
    clock = Clock()
    b = Breakers(failures=5, cooldown_s=30, clock=clock)
    b.failure("p", retry_after_s=2)
    assert not b.available("p")
    clock.t += 2
    assert b.available("p")


async def test_open_breakers_are_skipped_but_never_leave_nothing_to_try() -> None:
    clock = Clock()
    ex = executor(clock, cooldown_failures=1)
    attempt, calls = attempts_with({"a": UpstreamTimeout("t")})
    await ex.run((A, B), attempt, lambda t, e: None)
    attempt2, calls2 = attempts_with({})
    done = await ex.run((A, B), attempt2, lambda t, e: None)
    assert done.result == "b" and calls2 == ["b"]  # a is cooling down
    only_a, calls3 = attempts_with({})
    done = await ex.run((A,), only_a, lambda t, e: None)
    assert done.result == "a"  # everything cooling down: try anyway
