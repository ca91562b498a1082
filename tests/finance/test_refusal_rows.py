"""Every refused request has its ledger row, which finance counts: no upstream attempt
(`attempts = 0`), and the model it asked for whenever the body could be read for it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.config import parse_config
from tests.conftest import GatewayFactory, sim_config
from tests.support import ServerThread, wait_rows


@pytest.fixture()
def gw(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    raw = sim_config(sim.url, sqlite_url).model_dump()
    raw["max_request_body_mb"] = 0.01
    return gateway_factory(parse_config(raw, source="test", environ={}))


def row(url: str, r: httpx.Response) -> dict[str, Any]:
    (got,) = wait_rows(url, 1, id=r.headers["x-request-id"])
    return got


@pytest.mark.parametrize(
    ("body", "status", "model"),
    [
        ({"model": "gpt-4o-mini", "messages": "not a list"}, 400, "gpt-4o-mini"),
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, 404, None),
        ({"model": 7, "messages": []}, 400, None),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 20_000}]},
            413,
            None,
        ),
    ],
)
def test_refusals_have_rows_without_attempts(
    gw: ServerThread, sqlite_url: str, body: dict[str, Any], status: int, model: str | None
) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=body)
    assert r.status_code == status
    got = row(sqlite_url, r)
    assert (got["status_code"], got["attempts"], got["provider"]) == (status, 0, None)
    # a 413 is refused before its body is read: there is no model to record
    assert got["requested_model"] == (body["model"] if status == 404 else model)


def test_a_405_and_bad_json_have_rows_without_attempts(gw: ServerThread, sqlite_url: str) -> None:
    for r in (
        httpx.get(f"{gw.url}/v1/chat/completions"),
        httpx.post(f"{gw.url}/v1/chat/completions", content=b'{"model": "gpt-4o-mini",'),
    ):
        got = row(sqlite_url, r)
        assert got["status_code"] == r.status_code in (400, 405)
        assert (got["attempts"], got["requested_model"]) == (0, None)
