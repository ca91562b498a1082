"""The one request function every benchmark program uses, against the simulator on loopback."""

import asyncio

import aiohttp
import httpx
import orjson
import pytest

from benchmarks.common.request import send, send_streaming
from benchmarks.common.result import RequestInput, RequestResult
from tests.support import free_port


def _inp(url: str, stream: bool, out: int = 6) -> RequestInput:
    body: dict[str, object] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_completion_tokens": out,
        "ignore_eos": True,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return RequestInput(url + "/v1/chat/completions", orjson.dumps(body), 3, out, stream)


def _send(inp: RequestInput, *, content_times: bool = False) -> RequestResult:
    async def go() -> RequestResult:
        async with aiohttp.ClientSession(headers={"content-type": "application/json"}) as s:
            return await send(s, inp, content_times=content_times)

    return asyncio.run(go())


def test_streamed_request_is_timed_as_vllm_times_it_and_counted_from_usage(sim_url: str) -> None:
    r = _send(_inp(sim_url + "/tiny-gpu", True, out=6), content_times=True)
    assert r.success and r.streamed and r.status == 200, r.error
    assert r.output_tokens == 6 and r.usage_reported and r.prompt_len > 3
    assert r.chunks == 1 + 6 + 1  # role chunk, 6 tokens, the finish chunk
    assert len(r.itl) == r.chunks - 1 and r.first_token
    # equal when the last events arrive in the first content's read (a loaded machine)
    assert 0 < r.ttft <= r.latency
    assert r.latency == pytest.approx(r.ttft + sum(r.itl))
    # the content chunks only (not the role or finish chunk), in order, inside the request
    assert r.content_times is not None and len(r.content_times) == 6
    assert r.content_times == sorted(r.content_times)
    assert r.start_time + r.ttft <= r.content_times[0]
    assert r.content_times[-1] <= r.start_time + r.latency + 1e-9


def test_content_times_are_kept_only_when_asked_for(sim_url: str) -> None:
    assert _send(_inp(sim_url, True)).content_times is None


def test_non_streamed_request(sim_url: str) -> None:
    r = _send(_inp(sim_url, False, out=4))
    assert r.success and not r.streamed and r.output_tokens == 4 and r.latency > 0
    assert r.chunks == 1 and r.ttft == 0.0 and not r.itl


def test_failures_are_results_never_exceptions(sim_url: str) -> None:
    httpx.post(f"{sim_url}/sim/faults", json={"kind": "status", "status": 503, "count": 1})
    r = _send(_inp(sim_url, True))
    assert not r.success and r.status == 503 and r.error.startswith("HTTP 503")
    httpx.post(f"{sim_url}/sim/faults", json={"kind": "stream_error", "count": 1})
    r = _send(_inp(sim_url, True))
    assert not r.success and "error event" in r.error
    httpx.post(f"{sim_url}/sim/faults", json={"kind": "malformed", "count": 1})
    r = _send(_inp(sim_url, True))
    assert not r.success and "JSONDecodeError" in r.error
    httpx.post(f"{sim_url}/sim/faults", json={"kind": "status", "status": 429, "count": 1})
    r = _send(_inp(sim_url, False))
    assert not r.success and r.status == 429 and r.error.startswith("HTTP 429")
    dead = f"http://127.0.0.1:{free_port()}"
    for stream in (True, False):
        r = _send(_inp(dead, stream))
        assert not r.success and r.status == 0 and "ClientConnectorError" in r.error


def test_a_cancelled_stream_keeps_what_was_measured(sim_url: str) -> None:
    """Cancelling is the caller's decision, not an error: it propagates, and the result passed
    in still holds the TTFT of a stream cut off after its first token."""

    async def go() -> tuple[asyncio.Task[RequestResult], RequestResult]:
        result = RequestResult()
        async with aiohttp.ClientSession(headers={"content-type": "application/json"}) as s:
            # 2,000 tokens at 1 ms each: still streaming when cancelled
            task = asyncio.create_task(
                send_streaming(s, _inp(sim_url + "/tiny-gpu", True, out=2000), result)
            )
            for _ in range(500):
                if result.chunks >= 3:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.wait([task])
        return task, result

    task, result = asyncio.run(go())
    assert task.cancelled()
    assert result.first_token and result.ttft > 0 and result.chunks >= 3
    assert not result.success and result.status == 200 and not result.usage_reported
