"""GET /admin/quality: the quality evidence report (quality/report.py) as JSON or CSV.

Behind the master key like every /admin route (api/auth.py) when auth is on. Query: `since`
(ISO 8601 date or time), `task`, `format` (json, the default, or csv).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidRequest
from gateway.quality.cli import parse_since
from gateway.quality.report import quality_report, render
from gateway.state import AppState


async def report(request: Request) -> Response:
    gw: AppState = request.state.gw
    params = request.query_params
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("format must be json or csv.", param="format")
    try:
        since = parse_since(params.get("since"))
    except ValueError:
        raise InvalidRequest(
            "since must be an ISO 8601 date or time (e.g. 2026-12-01).", param="since"
        ) from None
    rows = await quality_report(gw.engine, since, params.get("task"))
    media = "application/json" if fmt == "json" else "text/csv"
    return Response(render(rows, "json" if fmt == "json" else "csv"), media_type=media)
