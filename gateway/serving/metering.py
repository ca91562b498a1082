"""From an `Outcome` to its price and its ledger row — pure functions, no I/O, no clock.

`price` uses the upstream's reported usage; when there is none (an upstream that reported
nothing, a stream cut short that still delivered tokens) it estimates: the prompt at ≈ 4
characters a token (OpenAI's rule of thumb) plus 4 tokens of framing per message, the
completion as one token per content event, and says so (`usage_estimated`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.core import ZERO, ClientRequest, Usage
from gateway.pricing.cost import cost
from gateway.serving.outcome import Outcome

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Priced:
    usage: Usage
    estimated: bool
    input_usd: Decimal
    output_usd: Decimal

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.output_usd


def estimate_prompt_tokens(request: ClientRequest) -> int:
    body = request.body
    if request.operation == "chat":
        msgs = body.get("messages") or []
        chars = sum(len(str(m.get("content") or "")) for m in msgs if isinstance(m, dict))
        return math.ceil(chars / 4) + 4 * len(msgs)
    text = body.get("prompt") if request.operation == "completions" else body.get("input")
    return math.ceil(len(str(text or "")) / 4)


def price(o: Outcome) -> Priced:
    usage, estimated = o.usage, False
    # a stream cut short still cost the tokens it delivered: estimate those too
    if (
        usage is None
        and o.target is not None
        and o.prompt_estimate is not None
        and (o.status_code < 400 or o.output_chunks > 0)
    ):
        estimated = True
        usage = Usage(prompt_tokens=o.prompt_estimate, completion_tokens=o.output_chunks)
    if usage is None or o.target is None:
        return Priced(usage or Usage(), estimated, ZERO, ZERO)
    c = cost(usage, o.target.price)
    return Priced(usage, estimated, c.input_usd, c.output_usd)


def ledger_row(o: Outcome, p: Priced) -> Row:
    u = p.usage
    return {
        "id": o.request_id,
        "created_at": datetime.fromtimestamp(o.created_at, UTC),
        "endpoint": o.endpoint,
        "requested_model": o.requested_model,
        "provider": o.target.provider.name if o.target else None,
        "upstream_model": o.target.upstream_model if o.target else None,
        "stream": o.stream,
        "status_code": o.status_code,
        "error_type": o.error_type,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_prompt_tokens": u.cached_prompt_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "input_cost_usd": p.input_usd,
        "output_cost_usd": p.output_usd,
        "cost_usd": p.total_usd,
        "usage_estimated": p.estimated,
        "ttft_ms": None if o.ttft_s is None else round(o.ttft_s * 1000, 3),
        "latency_ms": round(o.latency_s * 1000, 3),
        "upstream_request_id": o.upstream_request_id,
        "route_reason": o.route_reason,
        "attempts": o.attempts,
        "api_key_id": o.api_key_id,
        "team": o.team,
        "shadow": o.shadow_of is not None,
        "shadow_of": o.shadow_of,
    }
