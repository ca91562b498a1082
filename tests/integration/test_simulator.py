"""The simulator as a real server on 127.0.0.1, driven by the official openai SDK.

The SDK parses every answer into its own types (ChatCompletion, ChatCompletionChunk,
Completion, CreateEmbeddingResponse, Model), so passing here means the wire format is right.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import openai
import pytest
import uvicorn
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionStreamOptionsParam,
)
from prometheus_client.parser import text_string_to_metric_families

from gateway.simulator.app import create_app
from gateway.simulator.profiles import PROFILES
from gateway.simulator.server import hide_simulated_drops

# A vLLM-like profile small enough to observe: 40 ms to the first token, 10 ms per token,
# two sequences per batch (the third request waits).
SLOW = replace(
    PROFILES["llama-3.1-8b-h100"],
    name="test-slow",
    ttft_base_s=0.04,
    prefill_s_per_token=0.0,
    ttft_s_per_running=0.0,
    tpot_base_s=0.01,
    decode_ceiling_tok_s=0.0,
    max_num_seqs=2,
)
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello to the simulator."}
]
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The simulator (default profile `instant`) under uvicorn in a thread, on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app("instant", profiles={**PROFILES, SLOW.name: SLOW})
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", access_log=False, log_level="warning", lifespan="on"
    )
    hide_simulated_drops()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "simulator did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    httpx.post(f"{base_url}/sim/reset")
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-secret-key", max_retries=0) as sdk:
        yield sdk


def _fault(base_url: str, **rule: object) -> None:
    response = httpx.post(f"{base_url}/sim/faults", json=rule)
    assert response.status_code == 200, response.text


# --- chat completions --------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="my-model", messages=HELLO)
    assert result.object == "chat.completion" and result.id.startswith("chatcmpl-")
    assert result.model == "my-model"
    choice = result.choices[0]
    assert (
        choice.finish_reason == "stop"
        and choice.message.role == "assistant"
        and choice.message.content
    )
    usage = result.usage
    assert usage is not None
    assert usage.prompt_tokens == 3 + 3 + 7  # framing + ceil(27 chars / 4)
    assert usage.completion_tokens == 16 and usage.total_tokens == usage.prompt_tokens + 16
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    )
    assert (
        usage.completion_tokens_details is not None
        and usage.completion_tokens_details.reasoning_tokens == 0
    )
    cut = client.chat.completions.create(model="m", messages=HELLO, max_tokens=5)
    assert (
        cut.choices[0].finish_reason == "length" and cut.usage and cut.usage.completion_tokens == 5
    )
    exact = client.chat.completions.create(
        model="m", messages=HELLO, max_tokens=40, extra_body={"ignore_eos": True}
    )
    assert exact.usage and exact.usage.completion_tokens == 40
    many = client.chat.completions.create(model="m", messages=HELLO, n=3, max_completion_tokens=4)
    assert (
        [c.index for c in many.choices] == [0, 1, 2]
        and many.usage
        and many.usage.completion_tokens == 12
    )


def test_stream_joins_to_the_same_text_with_usage_only_when_asked(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="m", messages=HELLO)
    for include_usage in (False, True):
        options: ChatCompletionStreamOptionsParam | openai.Omit = (
            {"include_usage": True} if include_usage else openai.omit
        )
        chunks = list(
            client.chat.completions.create(
                model="m", messages=HELLO, stream=True, stream_options=options
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert chunks[0].choices[0].delta.role == "assistant"
        finishes = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        assert finishes == ["stop"]
        usage_chunks = [c for c in chunks if c.usage is not None]
        if include_usage:
            assert usage_chunks == [chunks[-1]] and chunks[-1].choices == []
            assert chunks[-1].usage == whole.usage
        else:
            assert usage_chunks == []


def test_json_mode_returns_a_json_object(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="m", messages=HELLO, response_format={"type": "json_object"}, max_tokens=7
    )
    assert isinstance(json.loads(result.choices[0].message.content or ""), dict)


def test_tool_calls_whole_and_streamed(client: openai.OpenAI) -> None:
    ask: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the weather in Paris?"}
    ]
    result = client.chat.completions.create(model="m", messages=ask, tools=[WEATHER_TOOL])
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}

    stream = client.chat.completions.create(
        model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    deltas = [
        tc for chunk in stream for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices
    ]
    assert {d.index for d in deltas} == {0}
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"location": "Paris"}


# --- other endpoints ---------------------------------------------------------------------------


def test_completions_embeddings_models(client: openai.OpenAI) -> None:
    legacy = client.completions.create(model="m", prompt="Once upon a time", max_tokens=6)
    assert legacy.object == "text_completion" and legacy.choices[0].finish_reason == "length"
    streamed = client.completions.create(
        model="m", prompt="Once upon a time", max_tokens=6, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == legacy.choices[0].text

    floats = client.embeddings.create(
        model="emb", input=["a", "bb"], encoding_format="float", dimensions=16
    )
    assert [len(d.embedding) for d in floats.data] == [16, 16] and floats.usage.prompt_tokens == 2
    # the SDK asks for base64 by default and decodes it itself
    default = client.embeddings.create(model="emb", input="a", dimensions=16)
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)

    models = client.models.list()
    assert [m.id for m in models.data] == ["sim-instant"]


def test_raw_base64_embeddings_and_health(base_url: str) -> None:
    body = {"model": "e", "input": "abc", "encoding_format": "base64", "dimensions": 4}
    data = httpx.post(f"{base_url}/v1/embeddings", json=body).json()["data"][0]["embedding"]
    assert len(struct.unpack("<4f", base64.b64decode(data))) == 4
    assert httpx.get(f"{base_url}/health").status_code == 200


def test_profile_prefix_is_an_independent_upstream(base_url: str, client: openai.OpenAI) -> None:
    with openai.OpenAI(
        base_url=f"{base_url}/llama-3.1-8b-h100/v1", api_key="x", max_retries=0
    ) as llama:
        assert [m.id for m in llama.models.list().data] == ["meta-llama/Llama-3.1-8B-Instruct"]
        reply = llama.chat.completions.create(model="llama", messages=HELLO, max_tokens=2)
        assert reply.usage and reply.usage.completion_tokens == 2
    client.models.list()
    stats = httpx.get(f"{base_url}/sim/stats").json()["upstreams"]
    assert stats["llama-3.1-8b-h100"]["requests"] == {"models": 1, "chat": 1}
    assert stats["instant"]["requests"] == {"models": 1}
    with (
        openai.OpenAI(
            base_url=f"{base_url}/no-such-profile/v1", api_key="x", max_retries=0
        ) as nowhere,
        pytest.raises(openai.NotFoundError),
    ):
        nowhere.models.list()
    assert httpx.get(f"{base_url}/gpt-4o-mini/metrics").status_code == 404  # hosted: no /metrics


def test_repeated_prefix_is_reported_as_cached(base_url: str) -> None:
    httpx.post(f"{base_url}/sim/reset")  # forget prefixes seen by earlier runs
    system = "You are a terse assistant. " * 8  # 216 characters: 3 + 54 prefix tokens
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "hi"},
    ]
    with openai.OpenAI(base_url=f"{base_url}/llama-3.1-8b-h100@cache/v1", api_key="x") as llama:
        first, second = (
            llama.chat.completions.create(model="m", messages=messages, max_tokens=1)
            for _ in range(2)
        )
    assert first.usage and first.usage.prompt_tokens_details
    assert second.usage and second.usage.prompt_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 48  # whole 16-token KV blocks
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


def test_bad_requests_get_openai_shaped_400s(base_url: str, client: openai.OpenAI) -> None:
    raw = httpx.post(
        f"{base_url}/v1/chat/completions",
        content=b"{nope",
        headers={"authorization": "Bearer sk-secret-key"},
    )
    assert raw.status_code == 400
    error = raw.json()["error"]
    assert (
        set(error) == {"message", "type", "param", "code"}
        and error["type"] == "invalid_request_error"
    )
    assert "sk-secret-key" not in raw.text
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=[])
    assert info.value.param == "messages"


# --- faults ------------------------------------------------------------------------------------


def test_rate_limit_fault_surfaces_as_rate_limit_error(
    base_url: str, client: openai.OpenAI
) -> None:
    _fault(base_url, prefix="", status=429, retry_after=2, count=1)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=HELLO)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.body and info.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model="m", messages=HELLO).choices  # count=1 is used up


def test_stream_faults_drop_malformed_and_error_event(base_url: str, client: openai.OpenAI) -> None:
    _fault(base_url, kind="drop", drop_after_chunks=3, count=1)
    with pytest.raises(openai.APIConnectionError):  # the connection closed mid-stream
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    _fault(base_url, kind="malformed", drop_after_chunks=2, count=1)
    with pytest.raises(json.JSONDecodeError):
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    _fault(base_url, kind="stream_error", status=503, drop_after_chunks=2, count=1)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    _fault(base_url, kind="status", status=500, count=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=HELLO)
    assert httpx.get(f"{base_url}/sim/faults").json() == {"faults": []}
    assert httpx.post(f"{base_url}/sim/faults", json={"kind": "explode"}).status_code == 400


def test_timeout_fault_hangs_past_the_client_timeout(base_url: str) -> None:
    _fault(base_url, profile=SLOW.name, kind="timeout", delay_s=5, count=1)
    with openai.OpenAI(
        base_url=f"{base_url}/{SLOW.name}/v1", api_key="x", max_retries=0, timeout=0.3
    ) as slow:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            slow.chat.completions.create(model="m", messages=HELLO, max_tokens=1)
        assert time.monotonic() - started < 2


# --- timing and /metrics -----------------------------------------------------------------------


def test_slow_profile_paces_tokens(base_url: str) -> None:
    with openai.OpenAI(base_url=f"{base_url}/{SLOW.name}/v1", api_key="x", max_retries=0) as slow:
        started = time.monotonic()
        stream = slow.chat.completions.create(model="m", messages=HELLO, max_tokens=10, stream=True)
        arrivals = [
            time.monotonic() - started
            for chunk in stream
            if chunk.choices and chunk.choices[0].delta.content
        ]
    assert len(arrivals) == 10
    assert arrivals[0] >= 0.035  # TTFT 40 ms
    assert arrivals[-1] - arrivals[0] >= 9 * 0.01 * 0.8  # nine more tokens at 10 ms


def _samples(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("finished_reason")
            values[sample.name + (f"[{label}]" if label else "")] = sample.value
    return values


async def test_metrics_reflect_running_and_waiting_requests(base_url: str) -> None:
    metrics_url = f"{base_url}/{SLOW.name}/metrics"
    async with openai.AsyncOpenAI(
        base_url=f"{base_url}/{SLOW.name}/v1", api_key="x", max_retries=0
    ) as slow:

        async def one() -> None:
            stream = await slow.chat.completions.create(
                model="m", messages=HELLO, max_tokens=20, stream=True
            )
            async for _ in stream:
                pass

        tasks = [asyncio.create_task(one()) for _ in range(3)]
        async with httpx.AsyncClient() as http:
            for _ in range(100):  # until all three arrived (each holds its slot ~230 ms)
                await asyncio.sleep(0.01)
                during = _samples((await http.get(metrics_url)).text)
                if during["vllm:num_requests_running"] + during["vllm:num_requests_waiting"] == 3:
                    break
            await asyncio.gather(*tasks)
            after = _samples((await http.get(metrics_url)).text)
    assert during["vllm:num_requests_running"] == 2  # max_num_seqs=2 ...
    assert during["vllm:num_requests_waiting"] == 1  # ... so the third one queues
    assert 0 < during["vllm:kv_cache_usage_perc"] < 1
    assert after["vllm:num_requests_running"] == 0 and after["vllm:num_requests_waiting"] == 0
    assert after["vllm:request_success_total[length]"] >= 3
    assert after["vllm:generation_tokens_total"] >= 60 and after["vllm:prompt_tokens_total"] > 0
    assert after["vllm:time_to_first_token_seconds_count"] >= 3
    assert after["vllm:e2e_request_latency_seconds_count"] >= 3


def test_client_disconnect_aborts_the_request(base_url: str) -> None:
    with httpx.Client() as http:
        body = {"model": "m", "messages": HELLO, "max_tokens": 200, "stream": True}
        with http.stream(
            "POST", f"{base_url}/{SLOW.name}/v1/chat/completions", json=body
        ) as response:
            next(response.iter_bytes())
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            stats = http.get(f"{base_url}/sim/stats").json()["upstreams"][SLOW.name]
            if stats["running"] == 0:
                break
            time.sleep(0.02)
    assert stats["running"] == 0 and stats["finished"]["abort"] >= 1
