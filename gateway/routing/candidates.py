"""What a request needs, and which candidate models can serve it — pure.

`RequestFacts` is read once from the request body: an estimate of its prompt tokens (≈ 4
characters a token plus framing, the same rule the ledger uses when an upstream reports no
usage — cheap enough for the request path), the output it may produce, whether it needs tools,
images or JSON mode, the minimum quality tier asked for (`x-gateway-min-tier`) and a key for its
cacheable prefix (the system prompt) so expected cost can price a likely prompt-cache hit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.config import ModelConfig
from gateway.core import PER_MTOK, ClientRequest, Operation, Price

IMAGE_TOKENS = 765  # OpenAI's figure for a 1024×1024 image at detail "high"; an estimate only


@dataclass(frozen=True, slots=True)
class RequestFacts:
    operation: Operation
    prompt_tokens: int
    max_output_tokens: int | None
    needs_tools: bool = False
    needs_vision: bool = False
    needs_json: bool = False
    min_tier: int | None = None
    prefix_key: int | None = None  # hash of the system prompt, when there is one
    prefix_tokens: int = 0


def _text_tokens(content: Any) -> tuple[int, bool]:
    """(estimated tokens, has an image) of one message's content."""
    if isinstance(content, str):
        return math.ceil(len(content) / 4), False
    if isinstance(content, list):
        tokens, image = 0, False
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "image_url":
                    tokens, image = tokens + IMAGE_TOKENS, True
                else:
                    tokens += math.ceil(len(str(part.get("text") or "")) / 4)
        return tokens, image
    return 0, False


def request_facts(req: ClientRequest, min_tier: int | None = None) -> RequestFacts:
    body = req.body
    if req.operation != "chat":
        text = body.get("prompt") if req.operation == "completions" else body.get("input")
        return RequestFacts(
            req.operation,
            math.ceil(len(str(text or "")) / 4),
            body.get("max_tokens"),
            min_tier=min_tier,
        )
    tokens, vision, leading = 0, False, True
    prefix_parts: list[str] = []  # the leading system/developer messages: the shared prefix
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        t, img = _text_tokens(m.get("content"))
        tokens += t + 4
        vision = vision or img
        leading = leading and m.get("role") in ("system", "developer")
        if leading:
            prefix_parts.append(str(m.get("content")))
    prefix = "\n".join(prefix_parts)
    rf = body.get("response_format")
    out = body.get("max_completion_tokens") or body.get("max_tokens")
    return RequestFacts(
        operation="chat",
        prompt_tokens=tokens,
        max_output_tokens=out if isinstance(out, int) else None,
        needs_tools=bool(body.get("tools")),
        needs_vision=vision,
        needs_json=isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"),
        min_tier=min_tier,
        prefix_key=hash(prefix) if prefix else None,
        prefix_tokens=math.ceil(len(prefix) / 4),
    )


def ineligibility(
    model: ModelConfig, facts: RequestFacts, operations: frozenset[Operation]
) -> str | None:
    """Why `model` cannot serve the request, or None when it can."""
    if facts.operation not in operations:
        return f"no /v1/{facts.operation}"
    caps = model.capabilities
    need = facts.prompt_tokens + (facts.max_output_tokens or 0)
    if need > caps.context_window:
        return f"context {need} > {caps.context_window}"
    if facts.needs_tools and not caps.tools:
        return "no tools"
    if facts.needs_vision and not caps.vision:
        return "no vision"
    if facts.needs_json and not caps.json_mode:
        return "no JSON mode"
    if facts.min_tier is not None and model.quality_tier < facts.min_tier:
        return f"tier {model.quality_tier} < {facts.min_tier}"
    return None


def over_price_cap(price: Price, cap_per_mtok: Decimal | None) -> str | None:
    """Why a candidate is too dear for a caller past its soft budget (None: it is not)."""
    if cap_per_mtok is None:
        return None
    dearest = max(price.input, price.output) * PER_MTOK
    if dearest <= cap_per_mtok:
        return None
    return f"${dearest.normalize():f}/1M > budget cap ${cap_per_mtok.normalize():f}/1M"
