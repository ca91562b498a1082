"""GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items: stored responses.

Thin: each reads the store (`conversations/store.py`) and shapes its answer as OpenAI's API
does (https://platform.openai.com/docs/api-reference/responses/get; openai-python
`ResponseItemList`, `ResponseItem`). A response another team stored is as unknown as one
never stored: 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.core import StoredResponse
from gateway.errors import InvalidRequest, NotFound
from gateway.state import AppState


def _json(obj: object) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


async def _stored(request: Request) -> StoredResponse:
    gw: AppState = request.state.gw
    response_id = request.path_params["response_id"]
    stored = await gw.responses.load(response_id, None)
    if stored is None:
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    return stored


async def retrieve(request: Request) -> Response:
    return _json((await _stored(request)).response)


async def remove(request: Request) -> Response:
    gw: AppState = request.state.gw
    response_id = request.path_params["response_id"]
    if not await gw.responses.delete(response_id, None):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    return _json({"id": response_id, "object": "response", "deleted": True})


def listed_item(item: Any, id_: str) -> dict[str, Any]:
    """An input item as the list shows it: with an id and a status, content as parts."""
    item = dict(item) if isinstance(item, dict) else {}
    item_type = str(item.setdefault("type", "message"))
    item.setdefault("id", id_)
    if item_type == "message":
        content = item.get("content")
        assistant = item.get("role") == "assistant"
        if isinstance(content, str):
            part: dict[str, Any] = {"type": "input_text", "text": content}
            if assistant:
                part = {"type": "output_text", "text": content, "annotations": []}
            item["content"] = [part]
        item.setdefault("status", "completed")
    elif item_type in ("function_call", "function_call_output"):
        item.setdefault("status", "completed")
    out: dict[str, Any] = item
    return out


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise InvalidRequest("`limit` must be an integer from 1 to 100.", param="limit")
    return int(raw)


async def input_items(request: Request) -> Response:
    stored = await _stored(request)
    base = stored.id.removeprefix("resp_")
    items = [listed_item(it, f"item_{base}{n:02x}") for n, it in enumerate(stored.input)]
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("`order` must be asc or desc.", param="order")
    if order == "desc":
        items.reverse()
    after = request.query_params.get("after")
    if after is not None:
        ids = [it["id"] for it in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    limit = _limit(request)
    page = items[:limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )
