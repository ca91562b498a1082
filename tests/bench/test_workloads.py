"""Workloads are built to exact token counts with the tokenizer litellm ships (offline)."""

from pathlib import Path

import orjson
import pytest

from benchmarks.load.tokenizer import Chars4, load_tokenizer
from benchmarks.load.workloads import WORKLOADS, WorkloadSpec, build_workload

TOK = load_tokenizer("auto")


def test_the_bundled_bpe_file_loads_without_network() -> None:
    assert TOK.name == "cl100k_base" and TOK.exact
    assert TOK.count("Hello world") == 2
    assert load_tokenizer("o200k_base").count("Hello world") == 2
    assert not load_tokenizer("chars4").exact


def test_fixed_prompts_have_exactly_the_requested_tokens() -> None:
    w = build_workload(WorkloadSpec("fixed", num_prompts=5, input_len=300, output_len=7), TOK)
    assert [TOK.count(s.messages[0][1]) for s in w.samples] == [300] * 5
    assert {s.output_tokens for s in w.samples} == {7}
    assert len({s.messages for s in w.samples}) == 5  # every prompt differs
    assert w.shared_prefix_fraction == 0


def test_random_lengths_follow_vllms_uniform_range() -> None:
    spec = WorkloadSpec("random", num_prompts=50, input_len=100, output_len=20, range_ratio=0.5)
    w = build_workload(spec, TOK)
    ins = [s.prompt_tokens for s in w.samples]
    assert min(ins) >= 50 and max(ins) <= 150 and len(set(ins)) > 10
    assert all(TOK.count(s.messages[0][1]) == s.prompt_tokens for s in w.samples)
    again = build_workload(spec, TOK)
    assert again.samples == w.samples  # seeded
    for dist in ("normal", "lognormal"):
        d = build_workload(
            WorkloadSpec("random", num_prompts=20, input_len=64, range_ratio=0.3, dist=dist), TOK
        )
        assert all(s.prompt_tokens >= 1 for s in d.samples)


def test_presets_have_the_production_shapes() -> None:
    cls = build_workload(WorkloadSpec("classification", num_prompts=4), TOK)
    s = cls.samples[0]
    assert [r for r, _ in s.messages] == ["system", "user"]
    assert TOK.count(s.messages[0][1]) == 5000 and s.prefix_tokens == 5000
    assert 40 <= TOK.count(s.messages[1][1]) <= 60 and s.output_tokens == 5
    assert len({x.messages[0] for x in cls.samples}) == 1  # the system prompt is shared
    assert cls.shared_prefix_fraction > 0.98
    ext = build_workload(WorkloadSpec("extraction", num_prompts=2), TOK)
    assert ext.samples[0].prompt_tokens == 2120 and ext.samples[0].output_tokens == 300
    chat = build_workload(WorkloadSpec("chat", num_prompts=2), TOK)
    c = chat.samples[0]
    assert [r for r, _ in c.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert sum(TOK.count(t) for _, t in c.messages) == c.prompt_tokens == 500
    assert c.output_tokens == 500


def test_sharegpt_file_is_filtered_like_vllm(tmp_path: Path) -> None:
    long_prompt = "word " * 1100
    data = [
        {
            "id": "a",
            "conversations": [
                {"from": "human", "value": "What is a GPU used for?"},
                {"from": "gpt", "value": "Mostly matrix maths, fast."},
            ],
        },
        {
            "id": "b",
            "conversations": [
                {"from": "human", "value": "hi"},
                {"from": "gpt", "value": "hello there friend"},
            ],
        },
        {
            "id": "c",
            "conversations": [
                {"from": "human", "value": long_prompt},
                {"from": "gpt", "value": "too long a prompt"},
            ],
        },
        {"id": "d", "conversations": [{"from": "human", "value": "only one turn"}]},
    ]
    path = tmp_path / "sharegpt.json"
    path.write_bytes(orjson.dumps(data))
    w = build_workload(WorkloadSpec("sharegpt", num_prompts=10, dataset_path=path), TOK)
    assert [s.messages[0][1] for s in w.samples] == ["What is a GPU used for?"]
    assert w.samples[0].output_tokens == TOK.count("Mostly matrix maths, fast.")
    with pytest.raises(ValueError, match="dataset-path"):
        build_workload(WorkloadSpec("sharegpt"), TOK)


def test_chars4_fallback_and_unknown_names() -> None:
    w = build_workload(WorkloadSpec("fixed", num_prompts=2, input_len=10), Chars4())
    assert len(w.samples[0].messages[0][1]) == 40 and not w.tokenizer_exact
    with pytest.raises(ValueError, match="unknown workload"):
        build_workload(WorkloadSpec("nope"), TOK)
    assert set(WORKLOADS) == {"fixed", "random", "sharegpt", "classification", "extraction", "chat"}
