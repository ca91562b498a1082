"""Streams end when the answer ends, whatever the upstream's socket does after; time to first
token is the time to the first generated content, for every provider.

The simulator's `linger` fault keeps the upstream connection open after the last event, and
`slow_start` sends the stream's head (Anthropic's message_start, OpenAI's role chunk) at once
and the first token later, as Anthropic does."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.integration.test_anthropic_chat import MODEL, claude_config
from tests.integration.test_chat import client
from tests.support import ServerThread, wait_rows

MODELS = ["gpt-4o-mini", MODEL]  # an OpenAI upstream and a Claude one, both on `instant`
CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hello there"}]


def fault(sim: ServerThread, kind: str, delay_s: float) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "kind": kind, "delay_s": delay_s, "count": 1},
    ).raise_for_status()


@pytest.mark.parametrize("linger_s", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("model", MODELS)
def test_fully_read_streams_are_complete_whenever_the_upstream_closes(
    sim: ServerThread,
    sqlite_url: str,
    gateway_factory: GatewayFactory,
    model: str,
    linger_s: float,
) -> None:
    gw = gateway_factory(claude_config(sim.url, sqlite_url))
    fault(sim, "linger", linger_s)
    started = time.perf_counter()
    stream = client(gw).chat.completions.create(model=model, messages=CHAT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    elapsed = time.perf_counter() - started
    stream.close()  # what the SDK does right after [DONE]
    assert text
    row = wait_rows(sqlite_url, 1)[0]
    assert row["status_code"] == 200 and row["error_type"] is None
    if linger_s:  # the client's response ended with the answer, not with the upstream's socket
        assert elapsed < linger_s


def test_anthropic_client_stream_ends_at_message_stop(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(claude_config(sim.url, sqlite_url))
    fault(sim, "linger", 1.0)
    c = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    started = time.perf_counter()
    with c.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as s:
        message = s.get_final_message()
    assert message.stop_reason and time.perf_counter() - started < 1.0
    row = wait_rows(sqlite_url, 1)[0]
    assert row["status_code"] == 200 and row["endpoint"] == "messages"


@pytest.mark.parametrize("model", MODELS)
def test_ttft_is_the_first_generated_content(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, model: str
) -> None:
    gw = gateway_factory(claude_config(sim.url, sqlite_url))
    fault(sim, "slow_start", 0.3)
    started = time.perf_counter()
    first_content: float | None = None
    stream = client(gw).chat.completions.create(model=model, messages=CHAT, stream=True)
    for chunk in stream:
        if first_content is None and chunk.choices and chunk.choices[0].delta.content:
            first_content = (time.perf_counter() - started) * 1000
    assert first_content is not None
    ttft_ms = wait_rows(sqlite_url, 1)[0]["ttft_ms"]
    # not the head (sent at once) but the first token: after it was generated, before the
    # client had it (how close the two are is the benchmarks' business, not a timed test's)
    assert 300 <= ttft_ms <= first_content
