"""/admin/usage and /admin/gpu: the finance reports (gateway/finance/) over HTTP.

Guarded like every /admin route (api/auth.py: the master key once auth is on). Query
parameters: `since` (required), `until`, `tz`, and for usage `group_by` (comma-separated).
Usage answers JSON, or CSV when asked with `Accept: text/csv` (or `format=csv`, for a link).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidRequest
from gateway.finance.gpu import gpu_report
from gateway.finance.period import parse_group_by, parse_period
from gateway.finance.render import to_csv
from gateway.finance.report import usage_report
from gateway.state import AppState


def _json(obj: object) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def _wants_csv(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt not in (None, "json", "csv"):
        raise InvalidRequest("format: json or csv", param="format")
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


async def usage(request: Request) -> Response:
    gw: AppState = request.state.gw
    q = request.query_params
    period = parse_period(q.get("since"), q.get("until"), q.get("tz"))
    group_by = parse_group_by(q.get("group_by"))
    csv = _wants_csv(request)
    report = await usage_report(gw.engine, gw.config, gw.prices, period, group_by)
    if csv:
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="usage.csv"'},
        )
    return _json(report)


async def gpu(request: Request) -> Response:
    gw: AppState = request.state.gw
    q = request.query_params
    period = parse_period(q.get("since"), q.get("until"), q.get("tz"))
    return _json(await gpu_report(gw.engine, gw.config, gw.prices, period))
