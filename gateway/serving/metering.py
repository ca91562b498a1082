"""From what happened on one request (an `Outcome`) to its ledger row and its metrics.

`Outcome` is what the request path records — plain facts, cheap to build. Pricing, the token
estimate when an upstream reported no usage, metrics and the row itself are computed by
`Meter.finalize`, which the ledger writer calls in its own task: off the request's path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.pricing.cost import ZERO, Usage, cost
from gateway.providers.base import ClientRequest, Target


@dataclass(slots=True)
class Outcome:
    request_id: str
    created_at: float  # time.time()
    request: ClientRequest | None
    endpoint: str
    requested_model: str | None
    target: Target | None
    status_code: int
    latency_s: float
    ttft_s: float | None = None
    usage: Usage | None = None
    error_type: str | None = None
    upstream_request_id: str | None = None
    route_reason: str | None = None
    route: str | None = None  # the route name when a policy chose the model
    prefix_key: int | None = None  # the request's cacheable prefix, for the router to learn
    attempts: int = 1
    output_chunks: int = 0  # streams: choice chunks seen, for the estimate when usage is absent
    api_key_id: str | None = None
    team: str | None = None


def estimate_prompt_tokens(request: ClientRequest) -> int:
    """≈ 4 characters a token (OpenAI's rule of thumb), plus 4 tokens of framing per message."""
    body = request.body
    if request.endpoint == "chat":
        msgs = body.get("messages") or []
        chars = sum(len(str(m.get("content") or "")) for m in msgs if isinstance(m, dict))
        return math.ceil(chars / 4) + 4 * len(msgs)
    text = body.get("prompt") if request.endpoint == "completions" else body.get("input")
    return math.ceil(len(str(text or "")) / 4)


class Meter:
    def __init__(self, metrics: GatewayMetrics, learn: Callable[..., None] | None = None) -> None:
        self.metrics = metrics
        self._learn = learn  # Router.observe

    def finalize(self, o: Outcome) -> dict[str, Any]:
        usage, estimated = o.usage, False
        # a stream cut short still cost the tokens it delivered: estimate those too
        if (
            usage is None
            and o.request is not None
            and o.target is not None
            and (o.status_code < 400 or o.output_chunks > 0)
        ):
            estimated = True
            usage = Usage(
                prompt_tokens=estimate_prompt_tokens(o.request), completion_tokens=o.output_chunks
            )
        input_usd = output_usd = ZERO
        if usage is not None and o.target is not None:
            c = cost(usage, o.target.price)
            input_usd, output_usd = c.input_usd, c.output_usd
        total = input_usd + output_usd
        u = usage or Usage()
        provider = o.target.provider.name if o.target else None
        if self._learn is not None and o.target is not None:
            self._learn(
                o.route,
                o.target,
                completion_tokens=u.completion_tokens,
                ttft_s=o.ttft_s,
                prefix_key=o.prefix_key,
                ok=o.status_code < 400,
            )
        if o.target is not None:
            self.metrics.observe(
                model=o.target.model,
                provider=o.target.provider.name,
                status=o.status_code,
                latency_s=o.latency_s,
                ttft_s=o.ttft_s,
                usage=usage,
                cost_usd=total,
            )
        else:
            self.metrics.client_error(o.status_code)
        return {
            "id": o.request_id,
            "created_at": datetime.fromtimestamp(o.created_at, UTC),
            "endpoint": o.endpoint,
            "requested_model": o.requested_model,
            "provider": provider,
            "upstream_model": o.target.upstream_model if o.target else None,
            "stream": bool(o.request and o.request.stream),
            "status_code": o.status_code,
            "error_type": o.error_type,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "cached_prompt_tokens": u.cached_prompt_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "input_cost_usd": input_usd,
            "output_cost_usd": output_usd,
            "cost_usd": total,
            "usage_estimated": estimated,
            "ttft_ms": None if o.ttft_s is None else round(o.ttft_s * 1000, 3),
            "latency_ms": round(o.latency_s * 1000, 3),
            "upstream_request_id": o.upstream_request_id,
            "route_reason": o.route_reason,
            "attempts": o.attempts,
            "api_key_id": o.api_key_id,
            "team": o.team,
        }
