"""The simulator's answer quality (gateway/simulator/quality.py): rates within binomial bounds
per seed, determinism, task identification, fitting answers to a plan, parsing a table."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import orjson
import pytest

from gateway.simulator.plans import ChoicePlan, GenerationPlan
from gateway.simulator.quality import (
    DEFAULT_QUALITY,
    PAD,
    Quality,
    QualityError,
    SimTask,
    answer,
    answered,
    identify,
    parse_quality,
)

REFERENCE = "claude-haiku"  # not in the table: answers truly
N = 1500
SEEDS = (0, 1, 7)
Z = 4.0  # a bound broken by chance about once in 16,000 checks


def _bound(p: float, trials: int) -> float:
    return Z * math.sqrt(p * (1 - p) / trials) + 1e-9


def _f1(a: str, b: str) -> float:
    x, y = Counter(a.split()), Counter(b.split())
    common = sum((x & y).values())
    return 0.0 if common == 0 else 2 * common / (sum(x.values()) + sum(y.values()))


def _text(pieces: tuple[str, ...]) -> str:
    return "".join(pieces)


CASES = [
    (profile, task, rate)
    for profile, rates in DEFAULT_QUALITY.agreement.items()
    for task, rate in rates.items()
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("profile", "task_name", "rate"), CASES)
def test_agreement_with_the_reference_is_within_binomial_bounds(
    seed: int, profile: str, task_name: str, rate: float
) -> None:
    task = DEFAULT_QUALITY.tasks[task_name]
    words = 20
    hits = trials = 0
    f1s = []
    for i in range(N):
        key = f"ticket {i}: my parcel has not arrived"
        mine = answer(task, profile, rate, key, words, seed)
        ref = answer(task, REFERENCE, DEFAULT_QUALITY.rate(REFERENCE, task_name), key, words, seed)
        if task.kind == "label":
            hits, trials = hits + (mine == ref), trials + 1
        elif task.kind == "json_fields":
            a, b = orjson.loads(_text(mine)), orjson.loads(_text(ref))
            hits += sum(a[f] == b[f] for f in task.fields)
            trials += len(task.fields)
        else:
            f1s.append(_f1(_text(mine), _text(ref)))
    if task.kind == "text":  # each word a Bernoulli(rate) draw: F1 = the kept share
        hits, trials = round(sum(f1s) * words), N * words
    assert abs(hits / trials - rate) <= _bound(rate, trials), (profile, task_name, hits / trials)


def test_answers_are_deterministic_by_seed_and_the_truth_is_shared() -> None:
    task = DEFAULT_QUALITY.tasks["classification"]
    keys = [f"k{i}" for i in range(300)]
    first = [answer(task, "llama-3.1-8b-h100", 0.7, k, 1, seed=3) for k in keys]
    assert first == [answer(task, "llama-3.1-8b-h100", 0.7, k, 1, seed=3) for k in keys]
    assert first != [answer(task, "llama-3.1-8b-h100", 0.7, k, 1, seed=4) for k in keys]
    # two models that always answer truly agree with each other on every request
    assert [answer(task, "a", 1.0, k, 1) for k in keys] == [
        answer(task, "b", 1.0, k, 1) for k in keys
    ]
    assert all(answer(task, "a", 0.0, k, 1) != answer(task, "b", 1.0, k, 1) for k in keys)


def test_a_json_answer_is_valid_json_with_the_task_fields() -> None:
    task = SimTask("x", "json_fields", fields=("a", "b"))
    assert set(orjson.loads(_text(answer(task, "m", 0.5, "k", 10)))) == {"a", "b"}


def _plan(pieces: int, finish: str) -> GenerationPlan:
    return GenerationPlan("m", 10, (ChoicePlan(tuple(f" w{i}" for i in range(pieces)), finish),))


def test_a_cut_answer_keeps_the_plans_length_and_a_natural_one_its_own() -> None:
    quality = DEFAULT_QUALITY
    label = quality.tasks["classification"]
    cut = answered(_plan(5, "length"), label, quality, "gpt-4o-mini", "k")
    assert len(cut.choices[0].pieces) == 5 and cut.choices[0].pieces[1:] == (PAD,) * 4
    assert cut.completion_tokens == 5
    natural = answered(_plan(5, "stop"), label, quality, "gpt-4o-mini", "k")
    assert len(natural.choices[0].pieces) == 1
    extraction = answered(_plan(3, "length"), quality.tasks["extraction"], quality, "x", "k")
    assert len(extraction.choices[0].pieces) == 3  # cut JSON, as a model's would be
    assert answered(_plan(3, "stop"), None, quality, "x", "k") == _plan(3, "stop")
    tool = GenerationPlan("m", 1, (ChoicePlan(("{}",), "tool_calls", "f"),))
    assert answered(tool, label, quality, "x", "k") == tool


def test_the_task_is_the_header_then_metadata_then_the_system_prompt_hash() -> None:
    prompt = "You label tickets."
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    quality = DEFAULT_QUALITY.merged(
        Quality({"tickets": SimTask("tickets", "label", system_prompt_sha256=(digest[:12],))})
    )
    header = {"headers": [(b"x-gateway-task", b"chat")]}
    none: dict[str, object] = {"headers": []}

    def system() -> str:
        return prompt

    assert identify(quality, header, {"task": "extraction"}, system).name == "chat"  # type: ignore[union-attr]
    assert identify(quality, none, {"task": "extraction"}, system).name == "extraction"  # type: ignore[union-attr]
    assert identify(quality, none, None, system).name == "tickets"  # type: ignore[union-attr]
    assert identify(quality, none, None, lambda: "another prompt") is None
    assert identify(quality, none, {"task": "unknown"}, system) is None

    def never() -> str:
        raise AssertionError("no task matches by hash: the prompt is not read")

    assert identify(DEFAULT_QUALITY, none, None, never) is None


def test_parse_merges_and_refuses_bad_entries() -> None:
    table = parse_quality(
        {
            "tasks": {"moderation": {"kind": "label", "labels": ["ok", "flag"]}},
            "agreement": {"llama-3.1-8b-h100": {"classification": 0.5, "moderation": 0.9}},
        }
    )
    merged = DEFAULT_QUALITY.merged(table)
    assert merged.rate("llama-3.1-8b-h100", "classification") == 0.5
    assert merged.rate("llama-3.1-8b-h100", "extraction") == 0.88  # kept
    assert merged.tasks["moderation"].labels == ("ok", "flag")
    assert merged.rate("claude-haiku", "moderation") == 1.0
    assert parse_quality(merged.to_json()) == Quality(merged.tasks, merged.agreement)
    for bad, words in [
        ([], "an object"),
        ({"agreement": {"m": {"t": 1.5}}}, "agreement.m.t"),
        ({"agreement": {"m": {"t": True}}}, "agreement.m.t"),
        ({"tasks": {"t": {"kind": "essay"}}}, "tasks.t.kind"),
        ({"tasks": {"t": {"kind": "label", "labels": ["one"]}}}, "tasks.t.labels"),
        ({"tasks": {"t": {"system_prompt_sha256": ["abc"]}}}, r"12\+ hex"),
        ({"task": {}}, "unknown keys"),
    ]:
        with pytest.raises(QualityError, match=words):
            parse_quality(bad)
