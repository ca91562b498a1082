"""The server's own view of a point, from vLLM's Prometheus `/metrics` (when it serves them).

Counters are read before and after each point and differenced (as `vllm bench serve` does for
its speculative-decoding counters); gauges are sampled once a second during the point and their
maxima kept: requests waiting in vLLM's queue (> 0 means past `--max-num-seqs` or out of KV
cache: the knee), KV-cache usage, preemptions. Names are vLLM's (`vllm/v1/metrics/loggers.py`;
shared/reference/ECONOMICS.md §4.1). A server without them (a hosted API, the gateway) simply
gives no `server` section.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import aiohttp

COUNTERS = {
    "vllm:prompt_tokens_total": "prompt_tokens",
    "vllm:generation_tokens_total": "generation_tokens",
    "vllm:prompt_tokens_cached_total": "prompt_tokens_cached",
    "vllm:prefix_cache_queries_total": "prefix_cache_queries",
    "vllm:prefix_cache_hits_total": "prefix_cache_hits",
    "vllm:num_preemptions_total": "preemptions",
    "vllm:request_success_total": "requests_finished",
}
GAUGES = {
    "vllm:num_requests_running": "max_running",
    "vllm:num_requests_waiting": "max_waiting",
    "vllm:kv_cache_usage_perc": "max_kv_cache_usage",
}


def parse(text: str, names: Mapping[str, str]) -> dict[str, float]:
    """Sum every sample of each wanted metric over its label sets."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        key = names.get(name)
        if key is None:
            continue
        try:
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
    return out


async def _get(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
            return await r.text() if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
        return None


class ServerWatch:
    """Scrapes `<root>/metrics` around and during one point."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.url = base_url.removesuffix("/v1") + "/metrics"
        self.before: dict[str, float] | None = None
        self.maxima: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        text = await _get(self.session, self.url)
        if text is None or "vllm:" not in text:
            return
        self.before = parse(text, COUNTERS)
        self._task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        await asyncio.sleep(0.2)  # the first sample once the load is on, then every second
        while True:
            text = await _get(self.session, self.url)
            for key, value in parse(text or "", GAUGES).items():
                self.maxima[key] = max(self.maxima.get(key, value), value)
            await asyncio.sleep(1.0)

    async def stop(self) -> dict[str, float] | None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.before is None:
            return None
        after = parse(await _get(self.session, self.url) or "", COUNTERS)
        out = {k: after[k] - self.before.get(k, 0.0) for k in after}
        out.update(self.maxima)
        if out.get("prefix_cache_queries"):
            out["prefix_cache_hit_rate"] = (
                out.get("prefix_cache_hits", 0.0) / out["prefix_cache_queries"]
            )
        elif out.get("prompt_tokens") and "prompt_tokens_cached" in out:
            out["prefix_cache_hit_rate"] = out["prompt_tokens_cached"] / out["prompt_tokens"]
        return out
