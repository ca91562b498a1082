"""The simulator's control API for tests and demos (`/sim/...`), never seen by a real provider.

POST   /sim/faults   add fault rules: one rule object, a list of them, or {"faults": [...]}
                     (fields: see faults.FaultSpec; "upstream" also accepted as "prefix"
                     or "profile"; "" = the root/default profile, "*" = every upstream)
GET    /sim/faults   the live rules with their remaining counts
DELETE /sim/faults   remove all rules, or only one upstream's with ?upstream=NAME
GET    /sim/stats    per upstream: requests by endpoint, running, waiting, tokens, finishes
POST   /sim/reset    remove all rules and zero every counter, restore the starting quality
                     table; optional {"seed": N}
GET    /sim/quality  the answer-quality table: tasks and agreement per profile (quality.py)
POST   /sim/quality  {"tasks": {...}, "agreement": {profile: {task: rate}}}: entries given
                     replace the same entries of the live table
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from gateway.simulator.asgi import Request, respond, respond_error
from gateway.simulator.faults import FaultError, FaultSpec, parse_fault
from gateway.simulator.quality import QualityError, parse_quality
from gateway.simulator.state import SimState

ControlHandler = Callable[[SimState, Request], Awaitable[None]]


def _rules(data: object) -> list[object]:
    if isinstance(data, dict) and "faults" in data:
        data = data["faults"]
    return list(data) if isinstance(data, list) else [data]


async def add_faults(sim: SimState, req: Request) -> None:
    try:
        data = orjson.loads(req.body or b"null")
    except orjson.JSONDecodeError as exc:
        await respond_error(req.send, 400, f"the request body is not valid JSON: {exc}")
        return
    specs: list[FaultSpec] = []
    for raw in _rules(data):
        try:
            spec = parse_fault(raw)
        except FaultError as exc:
            await respond_error(req.send, 400, str(exc))
            return
        key = sim.resolve_key(spec.upstream)
        if key is None:
            known = ", ".join(sorted(sim.profiles))
            await respond_error(
                req.send,
                400,
                f"unknown upstream {spec.upstream!r}; use a profile name ({known}), '' or '*'",
                "upstream",
            )
            return
        specs.append(spec.model_copy(update={"upstream": key}))
    for spec in specs:
        sim.faults.add(spec)
    await respond(req.send, 200, orjson.dumps({"faults": sim.faults.describe()}))


async def list_faults(sim: SimState, req: Request) -> None:
    await respond(req.send, 200, orjson.dumps({"faults": sim.faults.describe()}))


async def clear_faults(sim: SimState, req: Request) -> None:
    name = req.query("upstream")
    key = sim.resolve_key(name) if name is not None else None
    removed = sim.faults.clear(key) if name is None or key is not None else 0
    await respond(req.send, 200, orjson.dumps({"removed": removed}))


async def stats(sim: SimState, req: Request) -> None:
    body = {
        "default_profile": sim.default_key,
        "upstreams": {key: upstream.stats() for key, upstream in sim.upstreams.items()},
    }
    await respond(req.send, 200, orjson.dumps(body))


async def reset(sim: SimState, req: Request) -> None:
    seed = 0
    if req.body:
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("seed"), int):
            seed = data["seed"]
    sim.reset(seed)
    await respond(req.send, 200, b'{"ok":true}')


async def get_quality(sim: SimState, req: Request) -> None:
    await respond(req.send, 200, orjson.dumps(sim.quality.to_json()))


async def set_quality(sim: SimState, req: Request) -> None:
    try:
        update = parse_quality(orjson.loads(req.body or b"null"))
    except (orjson.JSONDecodeError, QualityError) as exc:
        await respond_error(req.send, 400, f"invalid quality table: {exc}")
        return
    sim.quality = sim.quality.merged(update)
    await respond(req.send, 200, orjson.dumps(sim.quality.to_json()))


CONTROL_ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("POST", "/sim/faults"): add_faults,
    ("GET", "/sim/faults"): list_faults,
    ("DELETE", "/sim/faults"): clear_faults,
    ("GET", "/sim/stats"): stats,
    ("POST", "/sim/reset"): reset,
    ("GET", "/sim/quality"): get_quality,
    ("POST", "/sim/quality"): set_quality,
}
