"""The comparators: how far a model's answer agrees with the reference model's — pure.

Each takes (answer, reference answer) and gives a `Verdict`: a score in [0, 1] and, for the
pass/fail comparators, the verdict itself (their intervals are Wilson's; the scores' are
bootstrapped: see intervals.py).

- `label` — the normalised texts are equal (case, surrounding whitespace, quotes and final
  punctuation, inner runs of whitespace ignored): classification, moderation, yes/no.
- `json_fields` — both answers parse as JSON (a ```json fence is allowed); the score is the
  share of top-level fields, over both answers' keys, whose values are equal (strings
  compared as labels). Invalid JSON on either side scores 0.
- `tool_call` — the same functions, in order, with equal arguments (as JSON values); two
  answers that call no tool agree.
- `text` — ROUGE-L F1 over lower-cased word tokens: the longest common subsequence
  (rapidfuzz's LCSseq, in C) weighed as Lin (2004) defines ROUGE-L with β = 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from rapidfuzz.distance import LCSseq

from gateway.quality.answers import Answer, ToolUse

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
_EDGES = " \t\r\n\"'`.,;:!?*"


@dataclass(frozen=True, slots=True)
class Verdict:
    comparator: str
    score: float
    passed: bool | None  # None: a score comparator


def normalise_label(text: str) -> str:
    return _SPACE.sub(" ", text.strip(_EDGES).casefold())


def label(answer: Answer, reference: Answer) -> Verdict:
    same = normalise_label(answer.text) == normalise_label(reference.text)
    return Verdict("label", float(same), same)


def _json(text: str) -> tuple[bool, Any]:
    s = text.strip()
    fenced = _FENCE.match(s)
    if fenced:
        s = fenced.group(1).strip()
    try:
        return True, orjson.loads(s)
    except orjson.JSONDecodeError:
        return False, None


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return normalise_label(a) == normalise_label(b)
    return bool(a == b)


def json_fields(answer: Answer, reference: Answer) -> Verdict:
    ok_a, a = _json(answer.text)
    ok_b, b = _json(reference.text)
    if not (ok_a and ok_b):
        return Verdict("json_fields", 0.0, None)
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return Verdict("json_fields", float(_equal(a, b)), None)
    keys = a.keys() | b.keys()
    if not keys:
        return Verdict("json_fields", 1.0, None)
    agree = sum(1 for k in keys if k in a and k in b and _equal(a[k], b[k]))
    return Verdict("json_fields", agree / len(keys), None)


def _same_call(a: ToolUse, b: ToolUse) -> bool:
    if a.name != b.name:
        return False
    ok_a, args_a = _json(a.arguments or "{}")
    ok_b, args_b = _json(b.arguments or "{}")
    if ok_a and ok_b:
        return bool(args_a == args_b)
    return a.arguments.strip() == b.arguments.strip()


def tool_call(answer: Answer, reference: Answer) -> Verdict:
    a, b = answer.tool_calls, reference.tool_calls
    same = len(a) == len(b) and all(_same_call(x, y) for x, y in zip(a, b, strict=True))
    return Verdict("tool_call", float(same), same)


def rouge_l(candidate: str, reference: str) -> float:
    c = _WORD.findall(candidate.lower())
    r = _WORD.findall(reference.lower())
    if not c and not r:
        return 1.0
    if not c or not r:
        return 0.0
    lcs = LCSseq.similarity(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def text(answer: Answer, reference: Answer) -> Verdict:
    return Verdict("text", rouge_l(answer.text, reference.text), None)


COMPARATORS: dict[str, Callable[[Answer, Answer], Verdict]] = {
    "label": label,
    "json_fields": json_fields,
    "tool_call": tool_call,
    "text": text,
}


def compare(name: str, answer: Answer, reference: Answer) -> Verdict:
    return COMPARATORS[name](answer, reference)
