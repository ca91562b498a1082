"""No provider key leaves the gateway through an error, whichever upstream echoes it.

Every provider kind is configured with a distinctive key, and every upstream error message
echoes all of them: error statuses 401/403/429/500/503 on JSON and streamed requests, on the
OpenAI and the Anthropic endpoints, and errors in the middle of a stream. Then the response
bodies and events, the log, /metrics and the ledger are searched for the keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.config import parse_config
from tests.conftest import GatewayFactory
from tests.support import ServerThread, fetch_rows

KEYS = {
    "openai": "sk-openai-LEAKCHECK-1111",
    "vllm": "vllm-LEAKCHECK-2222",
    "anthropic": "sk-ant-LEAKCHECK-3333",
    "gemini": "gemini-LEAKCHECK-4444",
}
MODELS = {"openai": "gpt-4o-mini", "vllm": "llama", "anthropic": "claude", "gemini": "gemini"}
ECHO = "invalid key; you sent " + ", ".join(KEYS.values())
STATUSES = [401, 403, 429, 500, 503]


def config(sim_url: str, db_url: str) -> Any:
    base = f"{sim_url}/instant"
    providers = [
        {"name": "openai", "kind": "openai", "api_base": f"{base}/v1"},
        {"name": "vllm", "kind": "vllm", "api_base": f"{base}/v1"},
        {"name": "anthropic", "kind": "anthropic", "api_base": base},
        {"name": "gemini", "kind": "gemini", "api_base": base},
    ]
    price = {"input_per_mtok": 1, "output_per_mtok": 1}
    return parse_config(
        {
            "database_url": db_url,
            "ledger": {"flush_interval_ms": 20},
            "providers": [{**p, "api_key": KEYS[p["name"]], "timeout_s": 5} for p in providers],
            "models": [
                {"name": MODELS[k], "provider": k, "upstream_model": m, "price": price}
                for k, m in [
                    ("openai", "gpt-4o-mini"),
                    ("vllm", "meta-llama/Llama-3.1-8B-Instruct"),
                    ("anthropic", "claude-3-5-haiku-20241022"),
                    ("gemini", "gemini-1.5-flash"),
                ]
            ],
        },
        source="test",
        environ={},
    )


def fault(sim: ServerThread, **rule: Any) -> None:
    rule = {"upstream": "instant", "count": 1, "message": ECHO, **rule}
    httpx.post(f"{sim.url}/sim/faults", json=rule).raise_for_status()


def call(gw: ServerThread, model: str, path: str, stream: bool) -> str:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    if path == "/v1/messages":
        body["max_tokens"] = 32
    if stream:
        body["stream"] = True
    with httpx.stream("POST", gw.url + path, json=body, timeout=10) as r:
        return f"{r.status_code} {dict(r.headers)} {r.read().decode()}"


def test_no_key_in_any_error_body_event_log_metric_or_row(
    sim: ServerThread,
    sqlite_url: str,
    gateway_factory: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = gateway_factory(config(sim.url, sqlite_url))
    answers: list[str] = []
    for model in MODELS.values():
        for path in ("/v1/chat/completions", "/v1/messages"):
            for stream in (False, True):
                for status in STATUSES:
                    fault(sim, status=status)
                    answers.append(call(gw, model, path, stream))
                fault(sim, kind="stream_error", status=500, drop_after_chunks=2)
                answers.append(call(gw, model, path, stream=True))
    assert sum(a.startswith(("4", "5")) for a in answers) == 4 * 2 * 2 * len(STATUSES)
    streamed_errors = [a for a in answers if a.startswith("200")]
    assert len(streamed_errors) == 4 * 2 * 2  # the mid-stream errors went out in-band...
    assert all("LEAKCHECK" not in a and "***" in a for a in streamed_errors)  # ...scrubbed
    rows = fetch_rows(sqlite_url)
    metrics = httpx.get(f"{gw.url}/metrics").text
    for key in KEYS.values():
        for answer in answers:
            assert key not in answer, answer
        assert key not in caplog.text
        assert key not in metrics
        assert all(key not in str(value) for row in rows for value in row.values())
