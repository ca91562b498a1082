"""Unit tests of the simulator's pure parts: timing model, token counting, plans, fault choice,
and the upstream's admission queue (no network)."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace

import pytest

from gateway.simulator import tokens
from gateway.simulator.faults import FaultError, FaultSpec, FaultTable, parse_fault, select_fault
from gateway.simulator.plans import (
    RequestError,
    output_length,
    plan_chat,
    plan_completion,
    plan_embeddings,
)
from gateway.simulator.profiles import (
    PROFILES,
    Profile,
    aggregate_output_tok_s,
    cached_prompt_tokens,
    request_latency_s,
    tpot_s,
    ttft_s,
)
from gateway.simulator.upstream import Upstream

LLAMA = PROFILES["llama-3.1-8b-h100"]
LLAMA_FP16 = PROFILES["llama-3.1-8b-h100-fp16"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
        },
    },
}


# --- timing model ------------------------------------------------------------------------------


def test_registry_names_match_profiles() -> None:
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.kind in ("vllm", "hosted")
    assert {"instant", "llama-3.1-8b-h100", "gpt-4o-mini", "claude-haiku", "gemini-flash"} <= set(
        PROFILES
    )


def test_instant_profile_is_all_zero() -> None:
    instant = PROFILES["instant"]
    assert instant.instant
    assert ttft_s(instant, 10_000, 500) == 0.0
    assert tpot_s(instant, 500) == 0.0
    assert request_latency_s(instant, 100, 100, 64) == 0.0
    assert aggregate_output_tok_s(instant, 8, 100, 100) == float("inf")
    assert not LLAMA.instant


@pytest.mark.parametrize("profile", [LLAMA, LLAMA_FP16], ids=lambda p: p.name)
def test_llama_knee_throughput_rises_then_flattens_while_latency_grows(profile: Profile) -> None:
    tok_s = {c: aggregate_output_tok_s(profile, c, 128, 128) for c in (1, 4, 16, 64, 256)}
    assert tok_s[64] > tok_s[1] * 5
    assert tok_s[1] < tok_s[4] < tok_s[16]
    # past the knee the aggregate flattens near the decode ceiling ...
    assert abs(tok_s[256] - tok_s[64]) / tok_s[64] < 0.05
    assert 0.9 * profile.decode_ceiling_tok_s <= tok_s[256] <= profile.decode_ceiling_tok_s
    # ... while each stream gets slower and the first token later
    assert tpot_s(profile, 256) > 5 * tpot_s(profile, 1)
    assert ttft_s(profile, 128, 64) > ttft_s(profile, 128, 16) > ttft_s(profile, 128, 1)


def test_llama_fp8_calibration_matches_published_h7_and_h9_points() -> None:
    # [REDHAT-MLPERF] H7: 5,103 output tok/s, MLPerf Server scenario, FP8, vLLM 0.10.0.
    assert aggregate_output_tok_s(LLAMA, 256, 128, 128) == pytest.approx(5_103, rel=0.05)
    # [NIM-PERF] H9: ITL 4.63 ms at c=1; TTFT 10.26 ms at c=1 and 67.41 ms at c=50.
    assert tpot_s(LLAMA, 1) == pytest.approx(0.00463)
    assert ttft_s(LLAMA, 32, 1) == pytest.approx(0.01026, rel=0.05)
    assert ttft_s(LLAMA, 32, 50) == pytest.approx(0.06741, rel=0.05)
    # the knee: flat TPOT up to ~24 concurrent, then N / 5,100 s
    assert tpot_s(LLAMA, 16) == tpot_s(LLAMA, 1)
    assert tpot_s(LLAMA, 128) == pytest.approx(128 / 5_100)


def test_llama_fp16_calibration_matches_published_h8_points() -> None:
    # [YOBITEL] H8: TPOT p50 6.48 ms at c=1, 46.91 ms at c=64; TTFT p50 13.98 / 86.92 ms.
    assert tpot_s(LLAMA_FP16, 1) == pytest.approx(0.00648)
    assert tpot_s(LLAMA_FP16, 64) == pytest.approx(0.04691, rel=0.05)
    assert ttft_s(LLAMA_FP16, 128, 1) == pytest.approx(0.01398, rel=0.05)
    assert ttft_s(LLAMA_FP16, 128, 64) == pytest.approx(0.08692, rel=0.05)
    assert 1_300 <= aggregate_output_tok_s(LLAMA_FP16, 64, 128, 128) <= 1_400


def test_prefill_grows_with_prompt_and_hosted_apis_do_not_slow_down() -> None:
    assert ttft_s(LLAMA, 4000, 1) > ttft_s(LLAMA, 100, 1)
    for name in ("gpt-4o-mini", "claude-haiku", "gemini-flash"):
        hosted = PROFILES[name]
        assert hosted.kind == "hosted" and not hosted.serves_metrics
        assert 0.1 <= ttft_s(hosted, 100, 1) <= 1.0
        assert tpot_s(hosted, 1) == tpot_s(hosted, 500) <= 0.012
        assert ttft_s(hosted, 100, 1) == ttft_s(hosted, 100, 500)


def test_cached_prompt_tokens_follow_min_and_block() -> None:
    mini = PROFILES["gpt-4o-mini"]
    assert cached_prompt_tokens(mini, 1000) == 0
    assert cached_prompt_tokens(mini, 1300) == 1280
    assert cached_prompt_tokens(PROFILES["instant"], 5000) == 0


# --- token counting and plans ------------------------------------------------------------------


def test_text_tokens_is_ceil_of_chars_over_four() -> None:
    assert [tokens.text_tokens(s) for s in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_chat_tokens_add_framing_names_images_and_tools() -> None:
    hello = [{"role": "user", "content": "hello"}]
    assert tokens.count_chat_tokens(hello) == 3 + 3 + 2
    assert tokens.count_chat_tokens([{**hello[0], "name": "bob"}]) == 9
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url"}]}
    ]
    assert tokens.count_chat_tokens(parts) == 8 + 85
    assert tokens.count_chat_tokens(hello, [WEATHER_TOOL]) > 8


def test_output_length_rules() -> None:
    assert output_length({}, LLAMA) == (128, False)
    assert output_length({"max_tokens": 10}, LLAMA) == (10, True)
    assert output_length({"max_tokens": 500}, LLAMA) == (128, False)
    assert output_length({"max_tokens": 500, "ignore_eos": True}, LLAMA) == (500, True)
    assert output_length({"max_tokens": 500, "min_tokens": 500}, LLAMA) == (500, True)
    assert output_length({"max_tokens": 500, "max_completion_tokens": 7}, LLAMA) == (7, True)
    for bad in ({"max_tokens": 0}, {"max_tokens": "5"}, {"max_tokens": True}):
        with pytest.raises(RequestError) as info:
            output_length(bad, LLAMA)
        assert info.value.param == "max_tokens"


def test_chat_plan_is_deterministic_and_honours_n_and_json_mode() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12, "n": 3}
    first, again = plan_chat(body, LLAMA), plan_chat(body, LLAMA)
    assert first == again
    assert len(first.choices) == 3 and first.completion_tokens == 36
    assert all(c.finish_reason == "length" and len(c.pieces) == 12 for c in first.choices)
    for limit in (1, 2, 3, 9):
        json_body = {
            **body,
            "n": 1,
            "max_tokens": limit,
            "response_format": {"type": "json_object"},
        }
        assert isinstance(json.loads(plan_chat(json_body, LLAMA).choices[0].text), dict)


def test_chat_plan_tool_calls() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "What's the weather in Paris?"}]}
    plan = plan_chat({**base, "tools": [WEATHER_TOOL]}, LLAMA)
    call = plan.choices[0]
    assert call.tool_name == "get_weather" and call.finish_reason == "tool_calls"
    assert json.loads(call.text) == {"location": "Paris", "unit": "c"}
    assert call.steps == len(call.pieces) + 1
    neutral = {
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}],
        "tools": [WEATHER_TOOL],
    }
    assert plan_chat(neutral, LLAMA).choices[0].tool_name is None
    assert (
        plan_chat({**neutral, "tool_choice": "required"}, LLAMA).choices[0].tool_name
        == "get_weather"
    )
    named = {**neutral, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    assert plan_chat(named, LLAMA).choices[0].tool_name == "get_weather"
    assert (
        plan_chat({**base, "tools": [WEATHER_TOOL], "tool_choice": "none"}, LLAMA)
        .choices[0]
        .tool_name
        is None
    )
    with pytest.raises(RequestError):
        plan_chat(
            {**neutral, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, LLAMA
        )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
    ],
)
def test_chat_plan_rejects_bad_requests(body: dict[str, object], param: str) -> None:
    with pytest.raises(RequestError) as info:
        plan_chat(body, LLAMA)
    assert info.value.param == param


def test_completion_and_embedding_plans() -> None:
    plan = plan_completion({"model": "m", "prompt": ["abcd", "abcdefgh"], "n": 2}, LLAMA)
    assert plan.prompt_tokens == 3 and len(plan.choices) == 4
    assert (
        plan.choices[0].finish_reason == "length" and len(plan.choices[0].pieces) == 16
    )  # default 16
    emb = plan_embeddings({"model": "e", "input": ["a", "b"], "dimensions": 8})
    assert emb.dimensions == 8 and emb.prompt_tokens == 2 and emb.seeds[0] != emb.seeds[1]
    vector = tokens.embedding_vector(emb.seeds[0], 8)
    assert sum(x * x for x in vector) == pytest.approx(1.0)
    assert plan_embeddings({"model": "e", "input": [1, 2, 3]}).prompt_tokens == 3


# --- faults ------------------------------------------------------------------------------------


def test_select_fault_uses_rate_draws_and_upstream_match() -> None:
    rules = [FaultSpec(upstream="a", rate=0.5), FaultSpec(upstream="*", kind="drop")]
    assert select_fault(rules, "a", lambda: 0.2) == 0
    assert select_fault(rules, "a", lambda: 0.9) == 1  # the first missed, the catch-all hits
    assert select_fault(rules, "b", lambda: 0.0) == 1
    assert select_fault(rules[:1], "b", lambda: 0.0) is None


def test_fault_table_counts_down_and_rate_is_roughly_honoured() -> None:
    table = FaultTable(seed=1)
    table.add(FaultSpec(upstream="a", status=429, count=2))
    assert [table.pick("a") is not None for _ in range(3)] == [True, True, False]
    assert not table
    table.add(FaultSpec(upstream="a", rate=0.3))
    hits = sum(table.pick("a") is not None for _ in range(2000))
    assert 500 < hits < 700
    assert table.clear("b") == 0 and table.clear("a") == 1


def test_parse_fault_is_strict_and_accepts_prefix_alias() -> None:
    spec = parse_fault({"prefix": "gpt-4o-mini", "status": 429, "retry_after": 2})
    assert spec.upstream == "gpt-4o-mini" and spec.kind == "status"
    for bad in ({"status": 200}, {"kind": "explode"}, {"rate": 0}, {"colour": "red"}, [1]):
        with pytest.raises(FaultError):
            parse_fault(bad)


# --- admission queue ---------------------------------------------------------------------------


async def test_upstream_queues_beyond_max_num_seqs_in_fifo_order() -> None:
    upstream = Upstream("small", replace(LLAMA, max_num_seqs=2))
    await upstream.admit(1, 10)
    await upstream.admit(1, 10)
    order: list[str] = []

    async def waiter(name: str) -> None:
        await upstream.admit(1, 10)
        order.append(name)

    third = asyncio.create_task(waiter("third"))
    fourth = asyncio.create_task(waiter("fourth"))
    await asyncio.sleep(0)
    assert (upstream.running, upstream.waiting) == (2, 2)
    upstream.release(1, 10)
    await asyncio.sleep(0)
    assert order == ["third"] and (upstream.running, upstream.waiting) == (2, 1)
    fourth.cancel()
    await asyncio.gather(third, fourth, return_exceptions=True)
    assert (upstream.running, upstream.waiting) == (2, 0)
    assert "vllm:num_requests_running" in upstream.metrics_text().decode()


async def test_upstream_kv_cache_capacity_also_gates_admission() -> None:
    upstream = Upstream("tiny-kv", replace(LLAMA, kv_cache_tokens=100))
    await upstream.admit(1, 80)
    assert upstream.kv_usage() == pytest.approx(0.8)
    blocked = asyncio.create_task(upstream.admit(1, 50))
    await asyncio.sleep(0)
    assert upstream.waiting == 1
    upstream.release(1, 80)
    await blocked
    assert (upstream.running, upstream.kv_tokens) == (1, 50)


def test_seed_helpers_are_stable() -> None:
    assert tokens.seed_of("hello") == tokens.seed_of("hello")
    assert tokens.reply_tokens(5, 4) == tokens.reply_tokens(5, 4)
    rng = random.Random(0)
    text = "".join(rng.choice("abc ") for _ in range(50))
    assert "".join(tokens.split_pieces(text)) == text
