"""A request's task: the name its quality evidence is kept under — pure, no I/O.

In order: the `x-gateway-task` header (`ClientRequest.task`, set at the edge), the body's
`metadata.task`, the configured task whose `match.system_prompt_sha256` is the hash of the
request's system prompt (or a prefix of it, 12 hex characters at least), else
`"sp:" + sha256(system prompt)[:12]` — stable across processes and restarts, unlike Python's
`hash` — and `"sp:none"` for a request without one.

The system prompt is what the router treats as the cacheable prefix: the leading `system` and
`developer` messages of the (OpenAI-shaped) neutral body, each message's text joined by "\\n"
(a content list contributes its parts' `text`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from gateway.config import TaskConfig
from gateway.core import ClientRequest

NO_SYSTEM_PROMPT = "sp:none"
MAX_TASK_CHARS = 100  # a task name longer than this is cut (the ledger's and metrics' bound)


def system_prompt(body: dict[str, Any]) -> str | None:
    parts: list[str] = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer"):
            break
        content = m.get("content")
        if isinstance(content, list):
            parts.append(
                "".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
                )
            )
        elif content is not None:
            parts.append(str(content))
    return "\n".join(parts) if parts else None


def system_prompt_sha256(body: dict[str, Any]) -> str | None:
    prompt = system_prompt(body)
    return None if prompt is None else hashlib.sha256(prompt.encode()).hexdigest()


def _metadata_task(request: ClientRequest) -> str | None:
    for body in (request.body, request.native_body):
        meta = body.get("metadata") if body else None
        if isinstance(meta, dict):
            task = meta.get("task")
            if isinstance(task, str) and task:
                return task
    return None


def task_of(request: ClientRequest, tasks: Sequence[TaskConfig]) -> str:
    named = request.task or _metadata_task(request)
    if named:
        return named[:MAX_TASK_CHARS]
    digest = system_prompt_sha256(request.body)
    if digest is None:
        return NO_SYSTEM_PROMPT
    for t in tasks:
        want = t.match.system_prompt_sha256
        if want is not None and digest.startswith(want):
            return t.name
    return "sp:" + digest[:12]


def task_config(name: str, tasks: Sequence[TaskConfig]) -> TaskConfig | None:
    return next((t for t in tasks if t.name == name), None)
