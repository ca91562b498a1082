"""The target server: its OpenAI base URL, its model, and the request bodies sent to it.

Bodies follow vLLM's `openai-chat` and `openai-completions` request functions
(`vllm/benchmarks/lib/endpoint_request_func.py`): `max_completion_tokens` (chat) or
`max_tokens` (completions), `stream_options.include_usage` when streaming, and vLLM's
`ignore_eos` so that exactly the planned number of tokens comes out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from benchmarks.common.result import RequestInput
from benchmarks.load.options import BenchError
from benchmarks.load.workloads import Sample, Workload


def openai_base(url: str) -> str:
    """The OpenAI base URL (…/v1): `http://host:8000` and `http://host:8000/v1` both work."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _chat(sample: Sample, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": sample.chat_messages(),
        "max_completion_tokens": sample.output_tokens,
    }


def _completions(sample: Sample, model: str) -> dict[str, Any]:
    return {"model": model, "prompt": sample.prompt, "max_tokens": sample.output_tokens}


@dataclass(frozen=True)
class Endpoint:
    path: str
    body: Callable[[Sample, str], dict[str, Any]]


# vLLM's `openai-chat` and `openai-completions` backends (rule R3: one entry per endpoint style)
ENDPOINTS = {
    "chat": Endpoint("/chat/completions", _chat),
    "completions": Endpoint("/completions", _completions),
}


def request_body(
    sample: Sample, endpoint: str, model: str, stream: bool, ignore_eos: bool
) -> dict[str, Any]:
    body = ENDPOINTS[endpoint].body(sample, model)
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True  # vLLM's sampling extension: exactly max_tokens come out
    return body


def build_inputs(
    workload: Workload, base: str, endpoint: str, model: str, stream: bool, ignore_eos: bool
) -> list[RequestInput]:
    if endpoint not in ENDPOINTS:
        raise BenchError(f"unknown endpoint {endpoint!r}; use {' or '.join(ENDPOINTS)}")
    url = base + ENDPOINTS[endpoint].path
    return [
        RequestInput(
            url,
            orjson.dumps(request_body(s, endpoint, model, stream, ignore_eos)),
            s.prompt_tokens,
            s.output_tokens,
            stream,
        )
        for s in workload.samples
    ]


async def discover_model(session: aiohttp.ClientSession, base: str) -> str:
    """The first model the server lists (vLLM bench's default)."""
    try:
        async with session.get(base + "/models") as r:
            data = await r.json(content_type=None) if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise BenchError(f"cannot list models at {base}/models: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or not data.get("data"):
        raise BenchError(f"{base}/models lists no model; pass --model")
    return str(data["data"][0]["id"])


async def server_version(session: aiohttp.ClientSession, base: str) -> str | None:
    """vLLM serves GET /version at its root; other servers may not."""
    try:
        async with session.get(base.removesuffix("/v1") + "/version") as r:
            if r.status == 200:
                data = await r.json(content_type=None)
                return str(data.get("version")) if isinstance(data, dict) else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return None
