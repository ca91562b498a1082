"""Fault injection for the simulator: which request fails, and how.

Owns the fault rules that tests install through `POST /sim/faults` and the choice of the rule
that applies to one request. Rendering the failure (status + OpenAI error body, a hung request,
a stream cut after k chunks, a malformed SSE event) is the app's job; this module only decides.

A rule names an upstream (the path prefix: a profile name, optionally `name@replica`; `""` for
the root, which is the default profile; `"*"` for all), a kind, a `rate` (fraction of matching
requests that fail) and an optional `count` (the rule is removed after failing that many).
Rules are tried in the order they were added; the first one whose draw hits applies. Draws come
from a seeded `random.Random`, so a test run is repeatable.

Kinds:
    status        answer `status` with an OpenAI error body (and `Retry-After` when set)
    timeout       hang `delay_s` seconds before answering normally (a client timeout trips first)
    drop          close the connection after `drop_after_chunks` stream chunks (mid-body when
                  not streaming)
    malformed     send an event that is not JSON after `drop_after_chunks` chunks
                  (a non-JSON body when not streaming)
    stream_error  send vLLM's in-stream error event (`data: {"error": …}` then `[DONE]`) after
                  `drop_after_chunks` chunks; a plain error status when not streaming

Two kinds shape a stream's timing instead of failing it (a whole answer is unaffected):
    slow_start    send the stream's head (Anthropic's `message_start`, OpenAI's role chunk) at
                  once, then wait `delay_s` before the first token — as Anthropic does
    linger        keep the connection open `delay_s` after the last event before ending it
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

FaultKind = Literal[
    "status", "timeout", "drop", "malformed", "stream_error", "slow_start", "linger"
]
PACING = ("slow_start", "linger")  # kinds that change a stream's timing, not its outcome

ALL_UPSTREAMS = "*"


class FaultSpec(BaseModel):
    """One fault rule, as posted to `/sim/faults` (unknown keys are an error: strict config)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    upstream: str = Field(
        default="", validation_alias=AliasChoices("upstream", "prefix", "profile")
    )
    kind: FaultKind = "status"
    status: int = Field(default=500, ge=400, le=599)
    rate: float = Field(default=1.0, gt=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    retry_after: float | None = Field(default=None, ge=0.0)
    delay_s: float = Field(default=30.0, ge=0.0)
    drop_after_chunks: int = Field(default=1, ge=0)
    message: str | None = None


class FaultError(ValueError):
    """A fault rule that does not validate; the message names the offending fields."""


def parse_fault(data: object) -> FaultSpec:
    if not isinstance(data, Mapping):
        raise FaultError("a fault rule must be a JSON object")
    try:
        return FaultSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise FaultError(f"invalid fault rule: {problems}") from None


def select_fault(
    rules: Sequence[FaultSpec], upstream: str, draw: Callable[[], float]
) -> int | None:
    """Index of the first rule for `upstream` whose draw falls under its rate, else None (pure).

    `draw` is called once per matching rule, in order, so a seeded generator gives a repeatable
    sequence of decisions.
    """
    for index, rule in enumerate(rules):
        if rule.upstream != upstream and rule.upstream != ALL_UPSTREAMS:
            continue
        if rule.rate >= 1.0 or draw() < rule.rate:
            return index
    return None


class FaultTable:
    """The live rules of one simulator process, with their remaining counts."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultSpec] = []
        self._remaining: list[int | None] = []
        self._rng = random.Random(seed)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, spec: FaultSpec) -> None:
        self._rules.append(spec)
        self._remaining.append(spec.count)

    def clear(self, upstream: str | None = None) -> int:
        """Remove every rule (or only those naming `upstream`); returns how many were removed."""
        keep = [
            i
            for i, rule in enumerate(self._rules)
            if upstream is not None and rule.upstream != upstream
        ]
        removed = len(self._rules) - len(keep)
        self._rules = [self._rules[i] for i in keep]
        self._remaining = [self._remaining[i] for i in keep]
        return removed

    def reseed(self, seed: int) -> None:
        self._rng.seed(seed)

    def pick(self, upstream: str) -> FaultSpec | None:
        """The rule that applies to the next request on `upstream`, consuming one of its count."""
        if not self._rules:
            return None
        index = select_fault(self._rules, upstream, self._rng.random)
        if index is None:
            return None
        rule = self._rules[index]
        left = self._remaining[index]
        if left is not None:
            if left <= 1:
                del self._rules[index]
                del self._remaining[index]
            else:
                self._remaining[index] = left - 1
        return rule

    def describe(self) -> list[dict[str, object]]:
        return [
            {**rule.model_dump(), "remaining": left}
            for rule, left in zip(self._rules, self._remaining, strict=True)
        ]
