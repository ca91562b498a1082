"""What the simulated Claude produces for one `POST /v1/messages` body (pure).

Owns validation in Anthropic's terms (https://docs.anthropic.com/en/api/messages: `max_tokens`
is required, unknown top-level fields are refused, temperature is 0–1, every `tool_result`
answers a `tool_use` of the turn before), prompt-token counting, the answer's content blocks
and the prompt-cache arithmetic. Rendering is `anthropic_wire.py`; timing is `engine.py`, which
paces the `GenerationPlan` inside the `MessagesPlan`.

Behaviour (documented for tests and demos):
- tokens are counted as in `tokens.py` (≈ 4 characters a token, 3 per message, 3 to prime the
  reply; tools and tool inputs as their JSON text; an image 85);
- with `tools` offered, `tool_choice` any or tool answers with one tool_use block; auto (or no
  tool_choice) does when the last user turn mentions "weather", after a short text block, as
  Claude tends to; none never does;
- the first `stop_sequences` entry found in the text cuts it (stop_reason "stop_sequence");
- prompt caching (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching): every
  block with `cache_control` ends a cacheable prefix (order: tools, system, messages). A prefix
  of at least CACHE_MIN_TOKENS seen within its TTL (5 minutes, or 1 hour with `"ttl": "1h"`;
  a hit refreshes it) is read from the cache; the rest up to the last breakpoint is written.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gateway.simulator import tokens
from gateway.simulator.plans import ChoicePlan, GenerationPlan
from gateway.simulator.profiles import Profile

# Anthropic's smallest documented minimum cacheable prompt (Claude Sonnet/Opus: 1,024 tokens;
# Haiku models need 2,048 or more). The simulator uses one minimum for every model.
CACHE_MIN_TOKENS = 1024
TTL_5M_S = 300.0
TTL_1H_S = 3600.0

KNOWN_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "output_format",
    "inference_geo",
})  # fmt: skip


class MessagesError(ValueError):
    """A request the simulator refuses, in Anthropic's terms (status, error type, message)."""

    def __init__(
        self, message: str, status: int = 400, kind: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Block:
    """One content block of the answer: text pieces, or a tool_use (name, argument pieces)."""

    pieces: tuple[str, ...]
    tool_name: str | None = None

    @property
    def steps(self) -> int:
        """Decode steps: one per piece, plus one for a tool_use's name."""
        return len(self.pieces) + (1 if self.tool_name is not None else 0)


@dataclass(frozen=True)
class Breakpoint:
    tokens: int  # prompt tokens up to and including the marked block
    key: int  # crc32 of that prefix
    ttl_s: float


@dataclass(frozen=True)
class MessagesPlan:
    generation: GenerationPlan  # what engine.py paces and counts
    blocks: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None = None
    breakpoints: tuple[Breakpoint, ...] = ()
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def input_tokens(self) -> int:
        """Anthropic's input_tokens: the prompt tokens neither read from nor written to cache."""
        return (
            self.generation.prompt_tokens
            - self.cache_read
            - self.cache_write_5m
            - self.cache_write_1h
        )

    @property
    def output_tokens(self) -> int:
        return sum(b.steps for b in self.blocks)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise MessagesError(message)


def validate(body: Mapping[str, Any]) -> None:
    unknown = sorted(set(body) - KNOWN_FIELDS)
    _require(not unknown, f"{unknown[0] if unknown else ''}: Extra inputs are not permitted")
    _require(isinstance(body.get("model"), str) and bool(body["model"]), "model: Field required")
    mt = body.get("max_tokens")
    _require(mt is not None, "max_tokens: Field required")
    _require(
        isinstance(mt, int) and not isinstance(mt, bool) and mt >= 1,
        "max_tokens: Input should be a positive integer",
    )
    for name in ("temperature", "top_p"):
        v = body.get(name)
        _require(
            v is None or (isinstance(v, (int, float)) and 0 <= v <= 1),
            f"{name}: Input should be between 0 and 1",
        )
    stops = body.get("stop_sequences")
    _require(
        stops is None or (isinstance(stops, list) and all(isinstance(s, str) for s in stops)),
        "stop_sequences: Input should be a list of strings",
    )
    _validate_messages(body.get("messages"))
    _validate_tools(body.get("tools"), body.get("tool_choice"))


def _validate_messages(messages: Any) -> None:
    _require(isinstance(messages, list) and bool(messages), "messages: Field required")
    previous_tool_ids: set[str] = set()
    for i, m in enumerate(messages):
        # `system` as well: the anthropic SDK's MessageParam allows it and Claude Code sends it
        _require(
            isinstance(m, dict) and m.get("role") in ("user", "assistant", "system"),
            f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'",
        )
        content = m.get("content")
        _require(
            isinstance(content, (str, list)),
            f"messages.{i}.content: Input should be a string or a list of blocks",
        )
        blocks = content if isinstance(content, list) else []
        if m["role"] == "system":
            _require(
                all(isinstance(b, dict) and b.get("type") == "text" for b in blocks),
                f"messages.{i}.content: a system turn holds text blocks only",
            )
            continue  # a tool_result answers the assistant turn before the system turn
        for j, b in enumerate(blocks):
            _require(
                isinstance(b, dict) and isinstance(b.get("type"), str),
                f"messages.{i}.content.{j}: each block needs a type",
            )
            if b["type"] == "tool_result":
                _require(
                    m["role"] == "user" and b.get("tool_use_id") in previous_tool_ids,
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    "`tool_result` blocks: each tool_result block must have a "
                    "corresponding tool_use block in the previous message",
                )
        previous_tool_ids = {
            str(b.get("id")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"
        }


def _validate_tools(tools: Any, choice: Any) -> None:
    if tools is not None:
        _require(
            isinstance(tools, list)
            and all(
                isinstance(t, dict) and isinstance(t.get("name"), str) and "input_schema" in t
                for t in tools
            ),
            "tools: each tool needs a name and an input_schema",
        )
    if choice is None:
        return
    _require(
        isinstance(choice, dict) and choice.get("type") in ("auto", "any", "tool", "none"),
        "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
    )
    if choice["type"] == "tool":
        names = {t["name"] for t in tools or ()}
        _require(
            choice.get("name") in names,
            f"tool_choice.name: tool {choice.get('name')!r} is not in tools",
        )


# --- counting and cache prefixes --------------------------------------------------------------


def _block_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return tokens.text_tokens(str(block.get("text", "")))
    if kind == "image":
        return tokens.IMAGE_TOKENS
    if kind == "tool_use":
        return tokens.text_tokens(
            str(block.get("name", "")) + orjson.dumps(block.get("input", {})).decode()
        )
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(b) for b in content if isinstance(b, Mapping))
        return tokens.text_tokens(str(content or ""))
    return tokens.text_tokens(orjson.dumps(block).decode())


def _unmarked(block: Mapping[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in block.items() if k != "cache_control"})


def _prompt_elements(body: Mapping[str, Any]) -> list[tuple[int, bytes, Any]]:
    """(tokens, identity, cache_control) of every prompt element in Anthropic's cache order."""
    out: list[tuple[int, bytes, Any]] = []
    for tool in body.get("tools") or ():
        out.append(
            (
                tokens.text_tokens(_unmarked(tool).decode()),
                _unmarked(tool),
                tool.get("cache_control"),
            )
        )
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append((tokens.text_tokens(system), system.encode(), None))
    elif isinstance(system, list):
        out += [(_block_tokens(b), _unmarked(b), b.get("cache_control")) for b in system]
    for m in body["messages"]:
        out.append((tokens.TOKENS_PER_MESSAGE, m["role"].encode(), None))
        content = m["content"]
        if isinstance(content, str):
            out.append((tokens.text_tokens(content), content.encode(), None))
        else:
            out += [(_block_tokens(b), _unmarked(b), b.get("cache_control")) for b in content]
    return out


def count_and_breakpoints(body: Mapping[str, Any]) -> tuple[int, tuple[Breakpoint, ...]]:
    total, key = 0, 0
    points: list[Breakpoint] = []
    for count, identity, mark in _prompt_elements(body):
        total += count
        key = zlib.crc32(identity, key)
        if isinstance(mark, Mapping) and mark.get("type") == "ephemeral":
            ttl = TTL_1H_S if mark.get("ttl") == "1h" else TTL_5M_S
            points.append(Breakpoint(total, key, ttl))
    return total + tokens.REPLY_PRIMING_TOKENS, tuple(points)


def resolve_cache(plan: MessagesPlan, hit: Callable[[int, float], bool]) -> MessagesPlan:
    """Split the prompt into cache read / cache write / input; `hit(key, ttl_s)` asks the
    upstream's cache (and stores the prefix, refreshing its lifetime)."""
    eligible = [b for b in plan.breakpoints if b.tokens >= CACHE_MIN_TOKENS]
    read = 0
    for b in eligible:
        if hit(b.key, b.ttl_s):
            read = max(read, b.tokens)
    written = {TTL_5M_S: 0, TTL_1H_S: 0}
    done = read
    for b in eligible:
        if b.tokens > done:
            written[b.ttl_s] += b.tokens - done
            done = b.tokens
    generation = replace(plan.generation, cached_tokens=read)
    return replace(
        plan,
        generation=generation,
        cache_read=read,
        cache_write_5m=written[TTL_5M_S],
        cache_write_1h=written[TTL_1H_S],
    )


# --- the answer -------------------------------------------------------------------------------


def _tool_to_call(body: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, bool]:
    """(the tool the model calls or None, whether the model was free not to)."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice["type"] == "none":
        return None, True
    if choice["type"] == "tool":
        return next(t for t in tools if t["name"] == choice["name"]), False
    if choice["type"] == "any":
        return tools[0], False
    last = body["messages"][-1]
    if last["role"] == "user" and "weather" in tokens.last_user_text([last]).lower():
        named = [t for t in tools if "weather" in t["name"].lower()]
        return (named or tools)[0], True
    return None, True


def _stop_at(pieces: tuple[str, ...], stops: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    text = "".join(pieces)
    found = [(text.find(s), s) for s in stops if s and s in text]
    if not found:
        return pieces, None
    cut, seq = min(found)
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) > cut:
            if cut > length:
                kept.append(piece[: cut - length])
            break
        kept.append(piece)
        length += len(piece)
    return tuple(kept), seq


def _truncate(blocks: list[Block], limit: int) -> tuple[tuple[Block, ...], bool]:
    out: list[Block] = []
    budget = limit
    for b in blocks:
        if budget <= 0:
            return tuple(out), True
        if b.steps <= budget:
            out.append(b)
            budget -= b.steps
            continue
        keep = budget - (1 if b.tool_name is not None else 0)
        out.append(Block(b.pieces[:keep], b.tool_name))
        return tuple(out), True
    return tuple(out), False


def plan_messages(body: Mapping[str, Any], profile: Profile) -> MessagesPlan:
    """Validate and plan (before the cache is consulted: see `resolve_cache`)."""
    validate(body)
    prompt_tokens, breakpoints = count_and_breakpoints(body)
    seed = tokens.seed_of(tokens.last_user_text(body["messages"]))
    natural = profile.default_output_tokens
    tool, free = _tool_to_call(body)
    stop_sequence = None
    if tool is not None:
        name = str(tool["name"])
        pieces = tokens.split_pieces(tokens.tool_arguments({"parameters": tool["input_schema"]}))
        preface = [Block(("Let", " me", " call", f" {name}."))] if free else []
        blocks, cut = _truncate([*preface, Block(pieces, name)], body["max_tokens"])
        stop_reason = "max_tokens" if cut else "tool_use"
    else:
        text, stop_sequence = _stop_at(
            tokens.reply_tokens(seed, natural), body.get("stop_sequences") or ()
        )
        blocks, cut = _truncate([Block(text)], body["max_tokens"])
        stop_reason = "max_tokens" if cut else "stop_sequence" if stop_sequence else "end_turn"
        stop_sequence = None if cut else stop_sequence
    flat = tuple(p for b in blocks for p in b.pieces)
    tool_name = next((b.tool_name for b in blocks if b.tool_name is not None), None)
    finish = "length" if stop_reason == "max_tokens" else "stop"
    generation = GenerationPlan(
        model=str(body["model"]),
        prompt_tokens=prompt_tokens,
        choices=(ChoicePlan(flat, finish, tool_name),),
        stream=body.get("stream") is True,
    )
    return MessagesPlan(generation, blocks, stop_reason, stop_sequence, breakpoints)
