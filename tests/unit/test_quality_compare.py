"""Comparators on hand-made pairs, intervals on known values, tasks, answers from every wire."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from gateway.config import TaskConfig, TaskMatch
from gateway.core import Chunk, ClientRequest, Raw, Result, Text, ToolCall
from gateway.quality.answers import Answer, ToolUse, from_chunks, from_result
from gateway.quality.compare import Verdict, compare, rouge_l
from gateway.quality.intervals import bootstrap, wilson
from gateway.quality.judge import RUBRIC, judge_request, verdict
from gateway.quality.tasks import NO_SYSTEM_PROMPT, task_of


def a(text: str = "", *calls: tuple[str, str]) -> Answer:
    return Answer(text, tuple(ToolUse(n, args) for n, args in calls))


# --- intervals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("passes", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
    # method 3 (Wilson score, no continuity correction)
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_the_textbook(passes: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(passes, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_edges() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(200, 200)
    assert hi == 1.0 and 0.98 < lo < 0.99  # (z²/(n+z²)) from the top: 1 - 0.0188
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_known_values_and_determinism() -> None:
    assert bootstrap([]) == (0.0, 1.0)
    assert bootstrap([0.8] * 50) == pytest.approx((0.8, 0.8))
    assert bootstrap([0.834]) == pytest.approx((0.834, 0.834))  # not moved to a 0.01 bin
    half = [0.0] * 200 + [1.0] * 200
    lo, hi = bootstrap(half)
    # the normal approximation: 0.5 ± 1.96 × sqrt(0.25 / 400) = [0.451, 0.549]
    assert lo == pytest.approx(0.451, abs=0.006) and hi == pytest.approx(0.549, abs=0.006)
    assert bootstrap(half) == (lo, hi)
    wide, narrow = bootstrap([0.2, 0.9] * 10), bootstrap([0.2, 0.9] * 1000)
    assert wide[1] - wide[0] > 5 * (narrow[1] - narrow[0])


# --- comparators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "same"),
    [
        ("Billing", "billing", True),
        ("  billing.\n", '"Billing"', True),
        ("technical  support", "Technical support", True),
        ("billing", "refund", False),
        ("", "billing", False),
    ],
)
def test_label(x: str, y: str, same: bool) -> None:
    v = compare("label", a(x), a(y))
    assert v.passed is same and v.score == float(same) and v.comparator == "label"


def test_json_fields_scores_the_share_of_fields_that_agree() -> None:
    ref = a('{"name": "Ada", "city": "London", "year": 1843}')
    assert (
        compare("json_fields", a('{"year": 1843, "city": "london", "name": "Ada"}'), ref).score
        == 1.0
    )
    assert compare(
        "json_fields", a('{"name": "Ada", "city": "Paris", "year": 1843}'), ref
    ).score == pytest.approx(2 / 3)
    # a missing field and an extra one both count against: 2 of 4 keys agree
    assert compare("json_fields", a('{"name": "Ada", "year": 1843, "x": 1}'), ref).score == 0.5
    fenced = a('```json\n{"name": "Ada", "city": "London", "year": 1843}\n```')
    assert compare("json_fields", fenced, ref).score == 1.0
    v = compare("json_fields", a('{"name": "Ada",'), ref)  # invalid JSON disagrees
    assert v.score == 0.0 and v.passed is None
    assert compare("json_fields", ref, a("not json")).score == 0.0
    assert compare("json_fields", a("[1, 2]"), a("[1, 2]")).score == 1.0


def test_tool_call_needs_the_same_function_and_arguments() -> None:
    ref = a("", ("get_weather", '{"city": "Paris", "unit": "c"}'))
    same = compare("tool_call", a("x", ("get_weather", '{"unit":"c","city":"Paris"}')), ref)
    assert same.passed is True and same.score == 1.0
    assert (
        compare("tool_call", a("", ("get_weather", '{"city": "Lyon", "unit": "c"}')), ref).passed
        is False
    )
    assert (
        compare("tool_call", a("", ("get_time", '{"city": "Paris", "unit": "c"}')), ref).passed
        is False
    )
    assert compare("tool_call", a("It is sunny."), ref).passed is False
    two = a("", ("get_weather", '{"city": "Paris", "unit": "c"}'), ("get_time", "{}"))
    assert compare("tool_call", two, ref).passed is False
    assert compare("tool_call", a("hello"), a("bye")).passed is True  # neither calls a tool


def test_text_is_rouge_l_f1() -> None:
    assert compare("text", a("The cat sat on the mat"), a("the cat sat on the mat.")).score == 1.0
    # LCS("the cat sat on the mat", "the cat lay on the mat") = 5 of 6 tokens each way
    assert rouge_l("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(5 / 6)
    # Lin (2004)'s example: LCS 3 ("police killed gunman" / "police the gunman"), 4 tokens each
    assert rouge_l("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    assert compare("text", a("completely different"), a("nothing shared here")).score == 0.0
    assert compare("text", a(""), a("")).score == 1.0
    assert compare("text", a("x"), a("")).passed is None


# --- tasks -----------------------------------------------------------------------------------


def _req(system: str | None = None, **body: object) -> ClientRequest:
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": "hi"}
    ]
    return ClientRequest("chat", {"model": "auto", "messages": msgs, **body}, "auto")


def test_task_names_in_order_of_precedence() -> None:
    prompt = "Classify the ticket into billing, technical or other."
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    tasks = (
        TaskConfig(name="tickets", match=TaskMatch(system_prompt_sha256=digest), compare="label"),
    )
    header = _req(prompt, metadata={"task": "from-body"})
    header.task = "from-header"
    assert task_of(header, tasks) == "from-header"
    assert task_of(_req(prompt, metadata={"task": "from-body"}), tasks) == "from-body"
    assert task_of(_req(prompt), tasks) == "tickets"
    short = (TaskConfig(name="t2", match=TaskMatch(system_prompt_sha256=digest[:12])),)
    assert task_of(_req(prompt), short) == "t2"  # the `sp:` name's 12 characters match too
    assert (
        task_of(_req("Another prompt"), tasks)
        == "sp:" + hashlib.sha256(b"Another prompt").hexdigest()[:12]
    )
    assert task_of(_req(None), tasks) == NO_SYSTEM_PROMPT
    parts = _req(None)
    parts.body["messages"].insert(
        0, {"role": "system", "content": [{"type": "text", "text": prompt}]}
    )
    assert task_of(parts, tasks) == "tickets"
    with pytest.raises(ValueError):
        TaskMatch(system_prompt_sha256="xyz")


# --- answers -------------------------------------------------------------------------------


def test_answers_from_every_wire() -> None:
    openai = {
        "choices": [
            {
                "message": {
                    "content": "Paris",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                    ],
                }
            }
        ]
    }
    assert from_result(Result(openai, None)) == a("Paris", ("f", '{"a":1}'))
    anthropic = {
        "content": [
            {"type": "text", "text": "Par"},
            {"type": "text", "text": "is"},
            {"type": "tool_use", "name": "f", "input": {"a": 1}},
        ]
    }
    assert from_result(Result(anthropic, None, wire="anthropic")) == a("Paris", ("f", '{"a":1}'))
    responses = {
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "Paris"}]},
            {"type": "function_call", "name": "f", "arguments": '{"a":1}'},
        ]
    }
    assert from_result(Result(responses, None, wire="openai-responses")) == a(
        "Paris", ("f", '{"a":1}')
    )


def _sse(obj: object, event: str | None = None) -> Raw:
    head = f"event: {event}\n".encode() if event else b""
    return Raw(head + b"data: " + orjson.dumps(obj) + b"\n\n")


def test_answers_from_streams() -> None:
    typed: list[Chunk] = [
        Text("Pa"),
        Text("ris"),
        Text("ignored", index=1),
        ToolCall(0, "", "c1", "f"),
        ToolCall(0, '{"a"'),
        ToolCall(0, ":1}"),
    ]
    assert from_chunks(typed) == a("Paris", ("f", '{"a":1}'))
    openai = [
        _sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Pa"}}]}),
        _sse({"choices": [{"index": 0, "delta": {"content": "ris"}}]}),
        _sse(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {"index": 0, "function": {"name": "f", "arguments": '{"a"'}}
                            ]
                        },
                    }
                ]
            }
        ),
        _sse(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]},
                    }
                ]
            }
        ),
        _sse({"choices": [], "usage": {"prompt_tokens": 1}}),
        Raw(b"data: [DONE]\n\n"),
    ]
    assert from_chunks(openai) == a("Paris", ("f", '{"a":1}'))
    anthropic = [
        _sse({"type": "message_start", "message": {}}, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Paris"},
            },
            "content_block_delta",
        ),
        _sse(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "name": "f", "input": {}},
            },
            "content_block_start",
        ),
        _sse(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'},
            },
            "content_block_delta",
        ),
    ]
    assert from_chunks(anthropic) == a("Paris", ("f", '{"a":1}'))
    done = {
        "type": "response.completed",
        "response": {
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Paris"}]}]
        },
    }
    assert from_chunks(
        [_sse({"type": "response.output_text.delta", "delta": "Pa"}), _sse(done)]
    ) == a("Paris")


def test_the_judge_asks_with_a_fixed_rubric_and_reads_one_word() -> None:
    req = _req("Sort tickets.")
    req.task = "tickets"
    asked = judge_request("judge-model", req, a("billing"), a("Billing", ("f", "{}")))
    assert asked.model == "judge-model" and asked.stream is False and asked.task == "tickets"
    system, user = asked.body["messages"]
    assert system == {"role": "system", "content": RUBRIC}
    assert "Request:\nhi" in user["content"] and "Answer A:\nbilling" in user["content"]
    assert "Answer B (reference):\nBilling\nf({})" in user["content"]
    assert asked.body["temperature"] == 0
    assert verdict(a("AGREE")) == Verdict("judge", 1.0, True)
    assert verdict(a("disagree.")) == Verdict("judge", 0.0, False)
    assert verdict(a("They mostly agree")) == Verdict("judge", 1.0, True)
    assert verdict(a("agreement unclear")) is None  # a word, not a substring
    assert verdict(a("")) is None
