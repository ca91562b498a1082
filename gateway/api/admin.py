"""/admin/teams and /admin/keys: thin handlers over `governance.admin.Admin`.

Only the master key gets here (api/auth.py). Bodies are validated strictly (an unknown field
is a 400 naming it). A key's secret appears once, in the answer to its creation.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidRequest
from gateway.governance.admin import (
    Admin,
    KeyPatch,
    KeySpec,
    TeamPatch,
    TeamSpec,
    key_view,
    team_view,
)
from gateway.governance.errors import PermissionDenied
from gateway.state import AppState

M = TypeVar("M", bound=BaseModel)


def _json(obj: object, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _admin(request: Request) -> Admin:
    gw: AppState = request.state.gw
    if gw.admin is None:
        raise PermissionDenied("Auth is off (no auth.master_key): there are no keys to manage.")
    return gw.admin


async def _body(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(orjson.loads(await request.body() or b"{}"))
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or None
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise InvalidRequest(f"{field}: {msg}", param=field) from None


def _list(items: list[dict[str, Any]]) -> Response:
    return _json({"object": "list", "data": items})


async def create_team(request: Request) -> Response:
    team = await _admin(request).create_team(await _body(request, TeamSpec))
    return _json(team_view(team), 201)


async def list_teams(request: Request) -> Response:
    return _list([team_view(t) for t in await _admin(request).teams()])


async def get_team(request: Request) -> Response:
    return _json(team_view(await _admin(request).team(request.path_params["name"])))


async def update_team(request: Request) -> Response:
    patch = await _body(request, TeamPatch)
    return _json(team_view(await _admin(request).update_team(request.path_params["name"], patch)))


async def delete_team(request: Request) -> Response:
    await _admin(request).delete_team(request.path_params["name"])
    return _json({"name": request.path_params["name"], "deleted": True})


async def create_key(request: Request) -> Response:
    key, secret = await _admin(request).create_key(await _body(request, KeySpec))
    return _json({**key_view(key), "key": secret}, 201)


async def list_keys(request: Request) -> Response:
    keys = await _admin(request).keys(request.query_params.get("team"))
    return _list([key_view(k) for k in keys])


async def get_key(request: Request) -> Response:
    return _json(key_view(await _admin(request).key(request.path_params["key_id"])))


async def update_key(request: Request) -> Response:
    patch = await _body(request, KeyPatch)
    key = await _admin(request).update_key(request.path_params["key_id"], patch)
    return _json(key_view(key))


async def revoke_key(request: Request) -> Response:
    return _json(key_view(await _admin(request).revoke_key(request.path_params["key_id"])))
