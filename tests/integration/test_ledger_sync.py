"""`durability: sync`: a response's last message goes out only once its row is fsynced."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from gateway.config import LedgerConfig
from gateway.ledger.db import create_engine
from gateway.ledger.durable import DurableResponses
from gateway.ledger.migrate import upgrade
from gateway.ledger.writer import LedgerWriter
from tests.conftest import GatewayFactory, sim_config
from tests.integration.test_chat import MSG
from tests.support import ServerThread, ledger_row, wait_rows


def _journaled(directory: Path, request_id: str) -> bool:
    return any(request_id.encode() in p.read_bytes() for p in directory.glob("seg-*"))


async def test_the_last_message_waits_for_the_fsync(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    journal = tmp_path / "j"
    w = LedgerWriter(
        create_engine(url),
        LedgerConfig(durability="sync", sync_timeout_ms=300),
        journal_dir=journal,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        w.submit(ledger_row(0, id=scope["gateway.request_id"]))  # recorded, then answered
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    sent: list[tuple[float, bool, bool]] = []  # (when, last message?, row fsynced by then?)

    def sender(rid: str) -> Send:
        async def send(message: Message) -> None:
            last = message["type"] == "http.response.body" and not message.get("more_body")
            sent.append((time.perf_counter(), last, _journaled(journal, rid)))

        return send

    middleware = DurableResponses(app, w)
    # the writer is not running: no fsync comes, the end waits until sync_timeout_ms
    t0 = time.perf_counter()
    await middleware({"type": "http", "gateway.request_id": "early"}, receive, sender("early"))
    assert [last for _, last, _ in sent] == [False, False, True]
    assert sent[1][0] - t0 < 0.1 and sent[2][0] - t0 >= 0.3  # only the end waited
    w.start()
    sent.clear()
    fsyncs = w.journal.fsyncs
    await middleware({"type": "http", "gateway.request_id": "late"}, receive, sender("late"))
    assert sent[-1][1] and sent[-1][2]  # the row was in the journal when the end went out
    assert w.journal.fsyncs > fsyncs
    await w.aclose()


def test_a_sync_gateway_answers_and_streams_with_rows_journaled_first(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    ledger: dict[str, Any] = {"durability": "sync", "journal_dir": str(journal)}
    gw = gateway_factory(sim_config(sim.url, sqlite_url, ledger=ledger))
    ids = []
    with httpx.Client(base_url=gw.url) as c:
        for stream in (False, True, False, True):
            body = {"model": "gpt-4o-mini", "messages": MSG, "stream": stream}
            with c.stream("POST", "/v1/chat/completions", json=body) as r:
                r.read()
                rid = r.headers["x-request-id"]
            assert r.status_code == 200
            assert _journaled(journal, rid), rid
            ids.append(rid)
        refused = c.post("/v1/chat/completions", json={"model": "nope", "messages": MSG})
        assert refused.status_code == 404 and _journaled(journal, refused.headers["x-request-id"])
    rows = wait_rows(sqlite_url, 5)
    assert set(ids) <= {r["id"] for r in rows}
