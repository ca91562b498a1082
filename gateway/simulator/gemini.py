"""The simulator's Gemini endpoints: `POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse` (https://ai.google.dev/api/generate-content), at the root and
under every `/{profile}/` prefix.

Like `handlers.py` for OpenAI: parse (`gemini_plans`), decide the fault (`faults.py`), spend
the profile's time (`engine.py`), render (`gemini_wire`) — except that every error is
Google's shape. A request without a key (`x-goog-api-key` header or `?key=`) is refused with
403 PERMISSION_DENIED as the live API does; the key itself is never read further, logged or
echoed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import orjson

from gateway.simulator import engine, gemini_wire, quality
from gateway.simulator.asgi import JSON, Request, respond
from gateway.simulator.gemini_plans import GeminiPlan, plan_generate
from gateway.simulator.handlers import send_whole
from gateway.simulator.plans import RequestError
from gateway.simulator.profiles import cached_prompt_tokens
from gateway.simulator.state import SimState
from gateway.simulator.upstream import Upstream

PATH_PREFIX = "/v1beta/models/"
_METHODS = ("generateContent", "streamGenerateContent")


async def _error(
    req: Request, status: int, message: str | None = None, retry_after: float | None = None
) -> None:
    headers = [] if retry_after is None else [(b"retry-after", b"%d" % math.ceil(retry_after))]
    await respond(
        req.send, status, gemini_wire.error_body(status, message, retry_after), JSON, headers
    )


def _has_key(req: Request) -> bool:
    headers = req.scope.get("headers") or []
    return any(k == b"x-goog-api-key" and v for k, v in headers) or bool(req.query("key"))


def _with_prompt_cache(up: Upstream, gp: GeminiPlan) -> GeminiPlan:
    """Implicit caching: a repeated long prefix is read from the cache (as `handlers.py`)."""
    plan = gp.plan
    if plan.prefix_key is None or not up.seen_prefix(plan.prefix_key):
        return gp
    cached = min(cached_prompt_tokens(up.profile, plan.prefix_tokens), plan.prompt_tokens)
    total = min(plan.cached_tokens + cached, plan.prompt_tokens)
    return replace(gp, plan=replace(plan, cached_tokens=total))


async def generate(sim: SimState, up: Upstream, req: Request) -> None:
    path: str = req.scope["path"]
    model, _, method = path[path.index(PATH_PREFIX) + len(PATH_PREFIX) :].rpartition(":")
    if not model or method not in _METHODS:
        await _error(
            req,
            404,
            f"models/{model or method} is not found for API version "
            "v1beta, or is not supported for this method.",
        )
        return
    stream = method == "streamGenerateContent"
    if stream and req.query("alt") != "sse":
        await _error(req, 400, "this simulator streams only with ?alt=sse")
        return
    if not _has_key(req):
        await _error(req, 403)
        return
    up.count(method)
    try:
        body = orjson.loads(req.body)
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        gp = _with_prompt_cache(up, plan_generate(body, model, stream, up.profile))
        plan = quality.answered_chat(
            gp.plan, sim.quality, req.scope, gp.chat, up.profile.name, sim.seed
        )
        gp = replace(gp, plan=plan)
    except orjson.JSONDecodeError as exc:
        await _error(req, 400, f"Invalid JSON payload received. {exc}")
        return
    except RequestError as exc:
        where = f"Invalid value at '{exc.param}': " if exc.param else ""
        await _error(req, 400, where + exc.message)
        return
    await _serve(sim, up, req, gp)


async def _serve(sim: SimState, up: Upstream, req: Request, gp: GeminiPlan) -> None:
    fault = sim.faults.pick(up.key) if sim.faults else None
    if fault is not None and (
        fault.kind == "status" or (fault.kind == "stream_error" and not gp.plan.stream)
    ):
        await _error(req, fault.status, fault.message, fault.retry_after)
        return
    response_id = sim.next_id("")

    async def serve() -> None:
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay_s)
        if gp.plan.stream:
            frames = gemini_wire.GeminiFrames(gp, response_id)
            await engine.stream(up, gp.plan, frames, req.send, fault, req.arrival)
            return
        await engine.whole(up, gp.plan, req.arrival)
        await send_whole(req, gemini_wire.response(gp, response_id), fault)

    if up.profile.instant and (fault is None or fault.kind != "timeout"):
        await serve()
    else:
        await engine.guarded(serve(), req.receive)
