"""The access log's lines (JSON and text) and how they are cut for a shared pipe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from gateway.core import Price, Target, Usage
from gateway.serving.access_log import AccessLog, _time, json_line, text_line, whole_lines
from gateway.serving.metering import price
from gateway.serving.outcome import Outcome
from tests.conftest import sim_config


def outcome(**extra: object) -> Outcome:
    cfg = sim_config("http://127.0.0.1:1", "sqlite://")
    target = Target("gpt-4o-mini", "gpt-4o-mini", cfg.providers[0], Price.per_mtok(0.15, 0.6))
    fields: dict[str, object] = dict(
        request_id="r1",
        created_at=1_796_537_915.5,
        endpoint="chat",
        requested_model="auto",
        status_code=200,
        latency_s=0.0123,
        target=target,
        usage=Usage(14, 128),
        ttft_s=0.004,
        stream=True,
        route="auto",
        api_key_id="key_abc",
        team="research",
    )
    fields.update(extra)
    return Outcome(**fields)  # type: ignore[arg-type]


def test_a_json_line_has_every_field_and_no_provider_key() -> None:
    o = outcome()
    line = json_line(o, price(o))
    assert line.endswith(b"\n") and b"sk-test-secret-123" not in line
    assert orjson.loads(line) == {
        "time": "2026-12-06T06:18:35.500Z",
        "request_id": "r1",
        "key_id": "key_abc",
        "team": "research",
        "endpoint": "chat",
        "model": "auto",
        "served_model": "gpt-4o-mini",
        "provider": "openai",
        "route": "auto",
        "status": 200,
        "error": None,
        "stream": True,
        "latency_ms": 12.3,
        "ttft_ms": 4.0,
        "prompt_tokens": 14,
        "completion_tokens": 128,
        "cost_usd": "0.00007890",
        "attempts": 1,
    }


def test_a_text_line_reads_left_to_right() -> None:
    refused = outcome(target=None, usage=None, status_code=429, error_type="budget_exceeded")
    assert text_line(refused, price(refused)).decode() == (
        "2026-12-06T06:18:35.500Z r1 key=key_abc team=research chat auto→- route=auto "
        "429 error=budget_exceeded 12.3ms ttft=4.0ms tokens=0+0 $0\n"
    )


def test_lines_are_cut_whole_for_a_shared_pipe() -> None:
    data = b"".join(b"%04d %s\n" % (i, b"x" * (i % 90)) for i in range(400))
    pieces = list(whole_lines(data, 512))
    assert b"".join(pieces) == data
    assert all(len(p) <= 512 and p.endswith(b"\n") for p in pieces)
    long = b"a" * 1000 + b"\n" + b"b\n"
    assert list(whole_lines(long, 512)) == [b"a" * 1000 + b"\n", b"b\n"]


def test_lines_of_one_loop_turn_go_out_in_one_write() -> None:
    writes: list[bytes] = []

    async def run() -> None:
        log = AccessLog("json", writes.append)
        for i in range(5):
            log(outcome(request_id=f"r{i}"), price(outcome()))
        assert writes == []
        await asyncio.sleep(0)

    asyncio.run(run())
    assert len(writes) == 1 and writes[0].count(b"\n") == 5


def test_the_time_is_datetimes_own_to_the_millisecond() -> None:
    """`_time` formats the date once a second; the digits must be isoformat's, rounding included
    (microseconds rounded half-even first, then cut to milliseconds)."""
    for ts in (0.0, 1.0000005, 1_796_537_915.5, 1_796_537_915.9994999, 1_796_537_915.9999995):
        iso = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
        assert _time(ts) == iso.replace("+00:00", "Z")
