"""The simulator's Anthropic endpoint: `POST /v1/messages`, at the root and under every
`/{profile}/` prefix, answered as JSON or as SSE (https://docs.anthropic.com/en/api/messages).

Like `handlers.py` for OpenAI: parse and plan (`anthropic_plans`), decide the fault
(`faults.py`), consult the prompt cache, spend the profile's time (`engine.py`), render
(`anthropic_wire`) — except that every error is Anthropic's shape, with a `request-id` header
as the live API sends. As the live API does, a request without a key (`x-api-key`, or a bearer
token) is refused with 401 and one without `anthropic-version` with 400; the key itself is
never read further, logged or echoed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import Any

import orjson

from gateway.simulator import anthropic_wire, engine, quality, tokens
from gateway.simulator.anthropic_plans import (
    Block,
    MessagesError,
    MessagesPlan,
    plan_messages,
    resolve_cache,
)
from gateway.simulator.asgi import JSON, Request, respond
from gateway.simulator.handlers import send_whole
from gateway.simulator.plans import RequestError
from gateway.simulator.state import SimState
from gateway.simulator.upstream import Upstream

PATH = "/v1/messages"


async def _error(
    sim: SimState,
    req: Request,
    status: int,
    message: str,
    kind: str | None = None,
    retry_after: float | None = None,
) -> None:
    request_id = sim.next_id("req_sim")
    headers = [(b"request-id", request_id.encode())]
    if retry_after is not None:
        headers.append((b"retry-after", b"%d" % math.ceil(retry_after)))
    await respond(
        req.send,
        status,
        anthropic_wire.error_body(status, message, request_id, kind),
        JSON,
        headers,
    )


def _check_headers(req: Request) -> None:
    headers = dict(req.scope.get("headers") or [])
    if not headers.get(b"x-api-key") and not headers.get(b"authorization"):
        raise MessagesError("x-api-key header is required", 401, "authentication_error")
    if not headers.get(b"anthropic-version"):
        raise MessagesError("anthropic-version: header is required")


async def messages(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("messages")
    try:
        _check_headers(req)
        body = orjson.loads(req.body)
        if not isinstance(body, dict):
            raise MessagesError("the request body must be a JSON object")
        plan = _answered(sim, up, req, body, plan_messages(body, up.profile))
    except orjson.JSONDecodeError as exc:
        await _error(sim, req, 400, f"the request body is not valid JSON: {exc}")
        return
    except MessagesError as exc:
        await _error(sim, req, exc.status, exc.message, exc.kind)
        return
    except RequestError as exc:
        await _error(sim, req, 400, exc.message)
        return
    await _serve(sim, up, req, plan)


def _answered(
    sim: SimState, up: Upstream, req: Request, body: dict[str, Any], plan: MessagesPlan
) -> MessagesPlan:
    """The plan answering the request's task (quality.py), when it has one and no tool use."""
    system = body.get("system")
    task = quality.identify(
        sim.quality,
        req.scope,
        body.get("metadata"),
        lambda: None if system is None else quality.block_text(system),
    )
    if task is None or len(plan.blocks) != 1 or plan.blocks[0].tool_name is not None:
        return plan
    pieces = quality.answered_pieces(
        plan.blocks[0].pieces,
        plan.stop_reason == "max_tokens",
        task,
        sim.quality,
        up.profile.name,
        tokens.last_user_text(body["messages"]),
        sim.seed,
    )
    choice = replace(plan.generation.choices[0], pieces=pieces)
    stop = plan.stop_reason if plan.stop_reason == "max_tokens" else "end_turn"
    return replace(
        plan,
        generation=replace(plan.generation, choices=(choice,)),
        blocks=(Block(pieces),),
        stop_reason=stop,
        stop_sequence=None,
    )


async def _serve(sim: SimState, up: Upstream, req: Request, plan: MessagesPlan) -> None:
    fault = sim.faults.pick(up.key) if sim.faults else None
    if fault is not None and (
        fault.kind == "status" or (fault.kind == "stream_error" and not plan.generation.stream)
    ):
        message = fault.message or f"simulated upstream error (status {fault.status})"
        await _error(sim, req, fault.status, message, retry_after=fault.retry_after)
        return
    # only an answered request reads or writes the prompt cache
    plan = resolve_cache(plan, lambda key, ttl: up.cache_hit(key, ttl, req.arrival))
    message_id = sim.next_id("msg_sim")

    async def serve() -> None:
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay_s)
        if plan.generation.stream:
            frames = anthropic_wire.MessagesFrames(plan, message_id)
            await engine.stream(up, plan.generation, frames, req.send, fault, req.arrival)
            return
        await engine.whole(up, plan.generation, req.arrival)
        await send_whole(req, anthropic_wire.message(plan, message_id), fault)

    if up.profile.instant and (fault is None or fault.kind != "timeout"):
        await serve()
    else:
        await engine.guarded(serve(), req.receive)
