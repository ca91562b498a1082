"""The simulator's upstream endpoints: what a provider or a vLLM server would answer.

Each handler parses the body, asks `plans.py` what the model produces, lets `faults.py` decide
whether this request fails, lets `engine.py` spend the profile's time, and renders with
`wire.py`. The Authorization header is never read: any key works and none is logged or echoed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import replace

import orjson

from gateway.simulator import engine, quality, wire
from gateway.simulator.asgi import JSON, PROMETHEUS_TEXT, Request, respond, respond_error
from gateway.simulator.faults import PACING, FaultSpec
from gateway.simulator.plans import (
    GenerationPlan,
    RequestError,
    plan_chat,
    plan_completion,
    plan_embeddings,
)
from gateway.simulator.profiles import cached_prompt_tokens
from gateway.simulator.state import SimState
from gateway.simulator.upstream import Upstream


def json_object(body: bytes) -> dict[str, object]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object")
    return data


def _fault_headers(fault: FaultSpec) -> list[tuple[bytes, bytes]]:
    if fault.retry_after is None:
        return []
    return [
        (b"retry-after", b"%d" % math.ceil(fault.retry_after)),
        (b"retry-after-ms", b"%d" % round(fault.retry_after * 1000)),
    ]


async def _fail(req: Request, fault: FaultSpec) -> None:
    message = fault.message or f"simulated upstream error (status {fault.status})"
    await respond_error(req.send, fault.status, message, headers=_fault_headers(fault))


def with_prompt_cache(up: Upstream, plan: GenerationPlan) -> GenerationPlan:
    if plan.prefix_key is None or not up.seen_prefix(plan.prefix_key):
        return plan
    cached = min(cached_prompt_tokens(up.profile, plan.prefix_tokens), plan.prompt_tokens)
    return replace(plan, cached_tokens=cached) if cached else plan


async def generate(
    sim: SimState,
    up: Upstream,
    req: Request,
    plan: GenerationPlan,
    id_prefix: str,
    render: Callable[[GenerationPlan, str, int], bytes],
    frames: Callable[[GenerationPlan, str, int], engine.Frames],
) -> None:
    """The shared path of chat and legacy completions once the plan is known."""
    fault = sim.faults.pick(up.key) if sim.faults else None
    if fault is not None and (
        fault.kind == "status" or (fault.kind == "stream_error" and not plan.stream)
    ):
        await _fail(req, fault)
        return
    request_id, created = sim.next_id(id_prefix), int(time.time())

    async def serve() -> None:
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay_s)
        if plan.stream:
            await engine.stream(
                up, plan, frames(plan, request_id, created), req.send, fault, req.arrival
            )
            return
        await engine.whole(up, plan, req.arrival)
        await send_whole(req, render(plan, request_id, created), fault)

    if up.profile.instant and (fault is None or fault.kind != "timeout"):
        await serve()  # nothing to wait for, so nothing to cancel
    else:
        await engine.guarded(serve(), req.receive)


async def send_whole(req: Request, body: bytes, fault: FaultSpec | None) -> None:
    if fault is None or fault.kind == "timeout" or fault.kind in PACING:
        await respond(req.send, 200, body)
    elif fault.kind == "malformed":
        await respond(req.send, 200, body[: len(body) // 2])  # a complete response that is not JSON
    else:  # drop: promise the whole body, send half of it, close the connection
        headers = [(b"content-type", JSON), (b"content-length", b"%d" % len(body))]
        await req.send({"type": "http.response.start", "status": 200, "headers": headers})
        await req.send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise engine.DropConnection("simulated drop in the middle of a response body")


async def chat_completions(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("chat")
    body = json_object(req.body)
    plan = with_prompt_cache(up, plan_chat(body, up.profile))
    plan = quality.answered_chat(plan, sim.quality, req.scope, body, up.profile.name, sim.seed)
    await generate(sim, up, req, plan, "chatcmpl-", wire.chat_completion, wire.ChatFrames)


async def completions(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("completions")
    plan = plan_completion(json_object(req.body), up.profile)
    await generate(sim, up, req, plan, "cmpl-", wire.text_completion, wire.TextFrames)


async def embeddings(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("embeddings")
    plan = plan_embeddings(json_object(req.body))
    fault = sim.faults.pick(up.key) if sim.faults else None
    if fault is not None and fault.kind != "timeout" and fault.kind not in PACING:
        await _fail(req, fault)
        return
    if fault is not None and fault.kind == "timeout":
        await engine.guarded(asyncio.sleep(fault.delay_s), req.receive)
    await respond(req.send, 200, wire.embeddings(plan))


async def models(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("models")
    owner = "vllm" if up.profile.kind == "vllm" else "system"
    await respond(req.send, 200, wire.models([up.profile.served_model], sim.created, owner))


async def metrics(sim: SimState, up: Upstream, req: Request) -> None:
    if not up.profile.serves_metrics:
        await respond_error(
            req.send, 404, f"profile {up.profile.name!r} is a hosted API: it has no /metrics"
        )
        return
    up.count("metrics")
    await respond(req.send, 200, up.metrics_text(), PROMETHEUS_TEXT)


async def health(sim: SimState, up: Upstream, req: Request) -> None:
    await respond(req.send, 200, b"", b"text/plain; charset=utf-8")
