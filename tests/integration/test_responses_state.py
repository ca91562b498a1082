"""Stored responses: `previous_response_id` chains across models, `GET`/`DELETE`
`/v1/responses/{id}`, `input_items`, `store: false`, read-your-writes across gateways, and
the store on both databases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.conversations.store import ResponseStore
from gateway.core import StoredResponse
from gateway.ledger.db import create_engine
from gateway.ledger.migrate import upgrade
from tests.conftest import _pg_exec_on
from tests.integration.test_anthropic_chat import Gateway
from tests.integration.test_responses import ASK, NATIVE, WEATHER, responses_config, row, shared
from tests.support import ServerThread, gateway_server, wait_rows

__all__ = ["shared"]  # the module-scoped gateway fixture, shared with test_responses


@pytest.fixture()
def oc(shared: Gateway, sim: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{shared.server.url}/v1", api_key="unused", max_retries=0)


def test_chain_from_the_local_llama_to_claude(oc: openai.OpenAI, shared: Gateway) -> None:
    first = oc.responses.with_raw_response.create(
        model="llama-3.1-8b", input="My name is Ada. Remember it.", instructions="Be kind."
    )
    second = oc.responses.with_raw_response.create(
        model="claude-haiku", input="What is my name?", previous_response_id=first.parse().id
    )
    alone = oc.responses.create(model="claude-haiku", input="What is my name?")
    assert first.headers["x-gateway-provider"] == "local-llama"
    assert second.headers["x-gateway-provider"] == "anthropic"
    r2 = second.parse()
    assert r2.previous_response_id == first.parse().id and r2.output_text
    assert r2.usage is not None and alone.usage is not None
    # the earlier turn (question and answer) went to Claude; the instructions did not
    assert r2.usage.input_tokens > alone.usage.input_tokens + 10
    rows = [row(shared, first.headers), row(shared, second.headers)]
    assert [r["provider"] for r in rows] == ["local-llama", "anthropic"]
    assert rows[1]["prompt_tokens"] == r2.usage.input_tokens
    third = oc.responses.create(model=NATIVE, input="And now?", previous_response_id=r2.id)
    assert third.usage is not None and third.usage.input_tokens > r2.usage.input_tokens


def test_retrieve_and_input_items(oc: openai.OpenAI) -> None:
    first = oc.responses.create(model="gpt-4o-mini", input="One")
    items: Any = [
        {"role": "user", "content": "Two"},
        {"role": "user", "content": [{"type": "input_text", "text": "Three"}]},
    ]
    r = oc.responses.create(model="gpt-4o-mini", input=items, previous_response_id=first.id)
    got = oc.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text and got.usage == r.usage
    assert got.previous_response_id == first.id
    listed = oc.responses.input_items.list(r.id)
    assert texts(listed.data) == ["Three", "Two"] and not listed.has_more  # newest first
    page = oc.responses.input_items.list(r.id, order="asc", limit=1)
    assert texts(page.data) == ["Two"] and page.has_more
    rest = oc.responses.input_items.list(r.id, order="asc", after=page.data[0].id)
    assert texts(rest.data) == ["Three"]


def texts(items: list[Any]) -> list[str]:
    return [str(i.content[0].text) for i in items]


@pytest.mark.parametrize("model", ["gpt-4o-mini", NATIVE])
def test_a_deleted_response_no_longer_continues_a_chain(
    oc: openai.OpenAI, shared: Gateway, model: str
) -> None:
    first = oc.responses.create(model=model, input="Hello")
    assert oc.responses.create(model=model, input="Again", previous_response_id=first.id).id
    oc.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as e:
        oc.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as e:
        oc.responses.create(model=model, input="Again", previous_response_id=first.id)
    err = e.value.response.json()["error"]
    assert err["param"] == "previous_response_id" and err["code"] == "previous_response_not_found"
    rec = row(shared, e.value.response.headers)
    assert rec["endpoint"] == "responses" and rec["status_code"] == 404
    with pytest.raises(openai.NotFoundError):
        oc.responses.delete(first.id)


def test_unstored_and_unknown_responses_are_404(oc: openai.OpenAI) -> None:
    r = oc.responses.create(model="gpt-4o-mini", input="Hi", store=False)
    for rid in (r.id, "resp_unknown"):
        with pytest.raises(openai.NotFoundError):
            oc.responses.retrieve(rid)
        with pytest.raises(openai.NotFoundError):
            oc.responses.create(model="gpt-4o-mini", input="x", previous_response_id=rid)


@pytest.mark.parametrize("model", ["llama-3.1-8b", NATIVE])
def test_a_streamed_response_continues_at_once(oc: openai.OpenAI, model: str) -> None:
    with oc.responses.stream(model=model, input=ASK, tools=[WEATHER]) as s:  # type: ignore[list-item]
        for _ in s:
            pass
        first = s.get_final_response()
    call = next(o for o in first.output if o.type == "function_call")
    out: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}]
    second = oc.responses.create(model="claude-haiku", input=out, previous_response_id=first.id)
    assert second.status == "completed"
    assert oc.responses.retrieve(first.id).output[-1].type == "function_call"


def test_another_gateway_on_the_same_database_sees_it(
    shared: Gateway, sim: ServerThread, oc: openai.OpenAI
) -> None:
    """A second worker: it reads what the first has not flushed yet once the writer has."""
    other = ServerThread(
        create_app(responses_config(sim.url, shared.ledger), CollectorRegistry())
    ).start()
    try:
        elsewhere = openai.OpenAI(base_url=f"{other.url}/v1", api_key="u", max_retries=0)
        first = oc.responses.create(model="gpt-4o-mini", input="Hi")
        r = elsewhere.responses.create(
            model="gpt-4o-mini", input="x", previous_response_id=first.id
        )
        assert r.status == "completed"
    finally:
        other.stop()


def record(rid: str, created: float, team: str | None = None) -> StoredResponse:
    response = {"id": rid, "object": "response", "output": [{"type": "message"}]}
    return StoredResponse(
        id=rid,
        created_at=created,
        team=team,
        model="m",
        previous_response_id=None,
        status="completed",
        context=[{"type": "message", "role": "user", "content": "before"}],
        input=[{"role": "user", "content": "hi"}],
        output=[{"type": "message"}],
        response=response,
    )


def test_the_store_on_both_databases(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        _pg_exec_on(db_url, "TRUNCATE responses")
    now = [time.time()]

    async def run() -> None:
        engine = create_engine(db_url)
        store = ResponseStore(engine, retention_days=1, clock=lambda: now[0])
        try:
            old, new = record("resp_old", now[0] - 3 * 86400), record("resp_new", now[0], "t1")
            store.save(old)
            store.save(new)
            assert await store.load("resp_old", None) is old  # pending: no query
            await store.flush()
            loaded = await store.load("resp_new", "t1")
            assert loaded is not None and loaded is not new and loaded.input == new.input
            assert loaded.response == new.response and abs(loaded.created_at - now[0]) < 0.01
            assert await store.load("resp_new", None) is None  # another team's
            assert await store.purge() == 1  # older than the retention
            assert await store.load("resp_old", None) is None
            assert await store.delete("resp_new", "t1")
            assert await store.load("resp_new", "t1") is None
            assert not await store.delete("resp_new", "t1")
        finally:
            await store.aclose()
            await engine.dispose()

    asyncio.run(run())


def test_stored_responses_outlive_the_gateway(sim: ServerThread, tmp_path: Path) -> None:
    ledger = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    upgrade(ledger)
    config = responses_config(sim.url, ledger)
    first = gateway_server(create_app(config, CollectorRegistry()))
    try:
        c = openai.OpenAI(base_url=f"{first.url}/v1", api_key="u", max_retries=0)
        rid = c.responses.create(model="claude-haiku", input="Hi").id
    finally:
        first.stop()  # flushes what is pending
    second = gateway_server(create_app(config, CollectorRegistry()))
    try:
        c = openai.OpenAI(base_url=f"{second.url}/v1", api_key="u", max_retries=0)
        assert c.responses.retrieve(rid).status == "completed"
        assert c.responses.create(model="gemini-flash", input="x", previous_response_id=rid).id
        assert wait_rows(ledger, 3, endpoint="responses")
    finally:
        second.stop()
