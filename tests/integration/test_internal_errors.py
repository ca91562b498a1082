"""A 500 — the gateway's own failure — is answered in the endpoint's envelope and leaves exactly
one ledger row. No input reaches one any more, so a fault is injected into the adapter (the
one place here that replaces our own code: there is no real way left to make the gateway
fail)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.codecs.openai import OpenAICodec
from gateway.providers.openai import OpenAIAdapter
from tests.support import ServerThread, wait_rows

PATHS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/messages": {
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    },
}

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/messages": "messages"}


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", list(PATHS))
def test_a_500_has_one_row(
    gateway: ServerThread,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    stream: bool,
) -> None:
    monkeypatch.setattr(OpenAIAdapter, "build_request", _boom)
    r = httpx.post(gateway.url + path, json={**PATHS[path], "stream": stream})
    assert r.status_code == 500
    if path == "/v1/messages":
        assert r.json()["error"]["type"] == "api_error"
    else:
        assert r.json()["error"]["code"] == "internal_error"
    rows = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])
    assert [(x["status_code"], x["error_type"], x["endpoint"]) for x in rows] == [
        (500, "internal_error", ENDPOINTS[path])
    ]


def test_a_failure_after_the_row_adds_no_second_row(
    gateway: ServerThread, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline recorded the upstream's answer (its tokens were spent), then rendering
    failed: the client gets a 500 and the ledger keeps the one row, not a duplicate id that
    would fail the writer's batch."""
    monkeypatch.setattr(OpenAICodec, "render", _boom)
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=PATHS["/v1/chat/completions"])
    assert r.status_code == 500
    time.sleep(0.3)  # the writer flushes every 20 ms here; give a duplicate time to show
    rows = wait_rows(sqlite_url, 1, id=r.headers["x-request-id"])
    assert len(rows) == 1 and rows[0]["status_code"] == 200
    ok = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": "x", "input": "a"})
    assert wait_rows(sqlite_url, 1, id=ok.headers["x-request-id"])  # the writer still writes
