"""What one attempt and its stream are made of, apart from the pipeline that runs them — pure:
how a stream ended (`_Ended`, `observe`), the targets that speak a request's own wire, an
upstream error without the provider key, the same request at another replica, and the
`Outcome` a request ends with (`outcome_of`; its latency is read from the clock).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from gateway.core import (
    Chunk,
    ClientRequest,
    StreamError,
    Target,
    UpstreamRequest,
    Usage,
    is_content,
)
from gateway.errors import GatewayError, Scrubber
from gateway.providers.registry import adapter_for
from gateway.routing.policies import Decision
from gateway.serving.metering import estimate_prompt_tokens
from gateway.serving.outcome import Outcome, RequestContext


@dataclass(slots=True)
class _Ended:
    """How a stream ended, as far as the ledger is concerned."""

    status: int = 200
    error_type: str | None = None
    ttft_s: float | None = None


def observe(chunks: list[Chunk], ended: _Ended, started: float, scrub: Scrubber) -> None:
    """What the ledger learns from one read's chunks: the time to the first generated content,
    and an error that ends the stream (its message scrubbed on the way to the client)."""
    if ended.ttft_s is None and any(is_content(c) for c in chunks):
        ended.ttft_s = time.perf_counter() - started
    last = chunks[-1]  # an error ends a stream: it comes last
    if isinstance(last, StreamError):
        ended.status, ended.error_type = last.status, last.code or last.type
        chunks[-1] = dataclasses.replace(last, message=scrub(last.message))


def native_targets(decision: Decision, req: ClientRequest, refusal: GatewayError) -> Decision:
    """Only the targets whose adapter takes `req` in its own wire (see
    `ClientRequest.native_only`); none is the request's refusal."""
    kept = tuple(t for t in decision.targets if adapter_for(t.provider.kind).native(req, t))
    if not kept:
        raise refusal
    return dataclasses.replace(decision, targets=kept)


def redacted(error: GatewayError, target: Target) -> GatewayError:
    """An upstream's error message without the provider key, should the upstream echo it
    (OpenAI's 401 names the key it was sent): the message goes on to the client."""
    key = target.provider.api_key
    if key and key in error.message:
        error.message = error.message.replace(key, "[redacted]")
        error.args = (error.message,)
    return error


def at_replica(up: UpstreamRequest, target: Target, api_base: str) -> UpstreamRequest:
    """The same request sent to another replica of the target's provider."""
    if api_base == target.provider.api_base:
        return up
    return dataclasses.replace(up, url=api_base + up.url[len(target.provider.api_base) :])


def outcome_of(
    ctx: RequestContext,
    req: ClientRequest,
    decision: Decision,
    target: Target,
    status: int,
    *,
    attempts: int,
    usage: Usage | None = None,
    error_type: str | None = None,
    upstream_request_id: str | None = None,
    ttft_s: float | None = None,
    output_chunks: int = 0,
    shadow_of: str | None = None,
) -> Outcome:
    """The request's one `Outcome`, from its facts as the pipeline has them when it ends."""
    return Outcome(
        request_id=ctx.request_id,
        created_at=ctx.created_at,
        endpoint=req.endpoint,
        requested_model=req.model,
        status_code=status,
        latency_s=time.perf_counter() - ctx.started,
        target=target,
        stream=req.stream,
        usage=usage,
        prompt_estimate=estimate_prompt_tokens(req) if usage is None else None,
        output_chunks=output_chunks,
        ttft_s=ttft_s,
        error_type=error_type,
        upstream_request_id=upstream_request_id,
        route=decision.route,
        route_reason=decision.reason,
        prefix_key=decision.prefix_key,
        attempts=attempts,
        api_key_id=ctx.api_key_id,
        team=ctx.team,
        shadow_of=shadow_of,
    )
