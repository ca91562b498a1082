"""The after-request path: the row is priced and built whatever a consumer does; consumer
failures are logged and counted; time to first token is measured to generated content."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import ProviderConfig
from gateway.core import Chunk, Price, Raw, Start, StreamError, Target, Text, ToolCall, Usage
from gateway.errors import Scrubber
from gateway.metrics import GatewayMetrics
from gateway.serving.after import AfterRequest, Consumer, metrics_consumer
from gateway.serving.attempts import _Ended, observe
from gateway.serving.metering import Priced
from gateway.serving.outcome import Outcome, RequestContext

NO_SECRETS = Scrubber(())
TARGET = Target(
    "mini",
    "gpt-4o-mini",
    ProviderConfig(name="openai", kind="openai", api_base="http://127.0.0.1:1/v1"),
    Price.per_mtok(1, 2),
)


def outcome(**kw: object) -> Outcome:
    base: dict[str, object] = {
        "request_id": "r1",
        "created_at": time.time(),
        "endpoint": "chat",
        "requested_model": "mini",
        "status_code": 200,
        "latency_s": 0.01,
        "target": TARGET,
        "usage": Usage(1_000_000, 500_000),
    }
    return Outcome(**{**base, **kw})  # type: ignore[arg-type]


def test_a_failing_consumer_never_costs_the_row(caplog: pytest.LogCaptureFixture) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    seen: list[str] = []

    def broken(o: Outcome, p: Priced) -> None:
        raise RuntimeError("a bug in a consumer")

    def after_it(o: Outcome, p: Priced) -> None:
        seen.append(o.request_id)

    consumers: dict[str, Consumer] = {
        "broken": broken,
        "metrics": metrics_consumer(metrics),
        "later": after_it,
    }
    after = AfterRequest(consumers, lambda name: metrics.after_request_errors.labels(name).inc())
    row = after.finalize(outcome())
    assert row["id"] == "r1" and str(row["cost_usd"]) == "2.000000"  # $1 in + $1 out
    assert seen == ["r1"]  # the consumers after the broken one still ran
    errors = metrics.registry.get_sample_value(
        "gateway_after_request_errors_total", {"consumer": "broken"}
    )
    assert errors == 1.0
    assert "after-request consumer broken failed on r1" in caplog.text
    assert metrics.registry.get_sample_value(
        "gateway_requests_total", {"model": "mini", "provider": "openai", "status_class": "2xx"}
    )


def test_a_row_without_usage_is_estimated_only_when_tokens_were_delivered() -> None:
    after = AfterRequest({}, lambda name: None)
    ok = after.finalize(outcome(usage=None, prompt_estimate=40, output_chunks=7))
    assert (ok["prompt_tokens"], ok["completion_tokens"], ok["usage_estimated"]) == (40, 7, True)
    refused = after.finalize(outcome(usage=None, status_code=502, prompt_estimate=40))
    assert refused["usage_estimated"] is False and refused["prompt_tokens"] == 0


def test_time_to_first_token_waits_for_generated_content() -> None:
    ctx = RequestContext("r", started=time.perf_counter() - 0.5, created_at=time.time())
    ended = _Ended()
    observe([Start("m", "x", 0), Raw(b"data: {}\n\n")], ended, ctx.started, NO_SECRETS)
    assert ended.ttft_s is None  # a role chunk or message_start is not a token
    observe([ToolCall(0, "", "call_1", "f")], ended, ctx.started, NO_SECRETS)
    first = ended.ttft_s
    assert first is not None and first >= 0.5
    observe([Text("later")], ended, ctx.started, NO_SECRETS)
    assert ended.ttft_s == first


def test_a_stream_error_reaches_the_client_scrubbed() -> None:
    ended = _Ended()
    chunks: list[Chunk] = [Text("hi"), StreamError("server_error", "bad key sk-live-123456789")]
    observe(chunks, ended, time.perf_counter(), Scrubber(["sk-live-123456789"]))
    assert chunks[-1] == StreamError("server_error", "bad key ***")
    assert (ended.status, ended.error_type) == (502, "server_error")
