"""The optional judge: a model asked, with a fixed rubric, whether two answers agree.

Off unless a task names `judge: MODEL` (each verdict is one more paid call, recorded as a
shadow row of its own). The rubric asks for one word; a reply that holds neither verdict
gives no pair (the sample counts as failed) rather than a guess.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core import ClientRequest
from gateway.quality.answers import Answer
from gateway.quality.compare import Verdict

RUBRIC = (
    "You compare two answers to the same request. Answer B is the reference. Reply with one "
    "word: AGREE if answer A gives the same decision, facts, values and actions as answer B "
    "(wording, order and style may differ), or DISAGREE if it does not."
)
MAX_CHARS = 8000  # of the request and of each answer, in the judge's prompt
_VERDICT = re.compile(r"\b(AGREE|DISAGREE)\b", re.I)


def _request_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else str(content)
    return ""


def judge_request(model: str, request: ClientRequest, a: Answer, b: Answer) -> ClientRequest:
    prompt = (
        f"Request:\n{_request_text(request.body)[:MAX_CHARS]}\n\n"
        f"Answer A:\n{a.sample()[:MAX_CHARS]}\n\n"
        f"Answer B (reference):\n{b.sample()[:MAX_CHARS]}"
    )
    body = {
        "model": model,
        "messages": [{"role": "system", "content": RUBRIC}, {"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": 5,
    }
    return ClientRequest(endpoint="chat", body=body, model=model, task=request.task)


def verdict(reply: Answer) -> Verdict | None:
    found = _VERDICT.search(reply.text)
    if found is None:
        return None
    agree = found.group(1).upper() == "AGREE"
    return Verdict("judge", float(agree), agree)
