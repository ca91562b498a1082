"""What the simulated model reads and writes: token counts and deterministic outputs (pure).

Token counting is deliberately cheap and deterministic rather than exact: a text of `c`
characters counts `ceil(c / 4)` tokens (OpenAI's rule of thumb, "1 token ≈ 4 characters of
English", help.openai.com "What are tokens and how to count them"). A chat prompt adds the
per-message framing of OpenAI's cookbook `How_to_count_tokens_with_tiktoken.ipynb`
(`num_tokens_from_messages`: 3 tokens per message, 1 more when it has a `name`, 3 to prime the
reply); an image part counts 85 tokens (OpenAI's low-detail image cost); tool definitions count
as their JSON text. The gateway and the tests can therefore predict `usage.prompt_tokens`.

Outputs are deterministic functions of the prompt: the same request always gets the same text,
tool-call arguments and embedding, so a streamed answer can be compared with a non-streamed one.
One generated "token" is one word (with its leading space), one streamed chunk.
"""

from __future__ import annotations

import base64
import math
import random
import struct
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

import orjson

from gateway.simulator.schema_values import example_json

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
IMAGE_TOKENS = 85

_WORDS = (
    "the", "simulated", "model", "answers", "with", "a", "short", "deterministic", "reply",
    "so", "that", "tests", "can", "compare", "streamed", "and", "whole", "responses", "while",
    "benchmarks", "measure", "only", "what", "gateway", "adds", "on", "top", "of", "upstream",
    "latency", "every", "token", "is", "one", "word", "here", "cost", "per", "request", "stays",
    "easy", "to", "check", "by", "hand", "because", "counts", "are", "predictable", "from",
    "prompt", "length", "alone", "nothing", "random", "happens", "unless", "fault", "rule",
    "says", "so", "otherwise", "all", "fine",
)  # fmt: skip


def text_tokens(text: str) -> int:
    """ceil(len(text) / 4): OpenAI's 4-characters-per-token rule of thumb."""
    return (len(text) + 3) // 4


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    total += text_tokens(part["text"])
                elif part.get("type") in ("image_url", "input_image"):
                    total += IMAGE_TOKENS
        return total
    return 0


def count_message_tokens(message: Mapping[str, object]) -> int:
    total = TOKENS_PER_MESSAGE + _content_tokens(message.get("content"))
    if "name" in message:
        total += TOKENS_PER_NAME
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and tool_calls:
        total += text_tokens(orjson.dumps(tool_calls).decode())
    return total


def count_chat_tokens(messages: Sequence[object], tools: object = None) -> int:
    """Prompt tokens of a chat request: messages, their framing, and tool definitions."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        if isinstance(message, Mapping):
            total += count_message_tokens(message)
    if isinstance(tools, list) and tools:
        total += text_tokens(orjson.dumps(tools).decode())
    return total


def prefix_key(messages: Sequence[object]) -> int:
    """A stable key for all messages but the last: what a prompt cache would match on."""
    return zlib.crc32(orjson.dumps(list(messages[:-1])))


def seed_of(text: str) -> int:
    """A small deterministic seed from the prompt text (crc32, so stable across processes)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % 1009


def zlib_seed(text: str) -> int:
    """A full 32-bit deterministic seed (embeddings: distinct inputs get distinct vectors)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def last_user_text(messages: Sequence[object]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", ""))
                    for p in content
                    if isinstance(p, Mapping) and p.get("type") == "text"
                )
    return ""


@lru_cache(maxsize=2048)
def reply_tokens(seed: int, n: int) -> tuple[str, ...]:
    """`n` word tokens; joined they are the reply text. Memoised: replies repeat across requests."""
    step = 1 + seed % 7
    words = [_WORDS[(seed + i * step) % len(_WORDS)] for i in range(n)]
    return tuple(word if i == 0 else " " + word for i, word in enumerate(words))


def json_reply_tokens(seed: int, n: int) -> tuple[str, ...]:
    """`n` tokens that join into a valid JSON object (for response_format json_object/json_schema).

    The object stays valid even when max_tokens cuts it short: the simulator never emits broken
    JSON unless a fault rule says so.
    """
    if n <= 1:
        return ("{}",)[:n]
    inner = reply_tokens(seed, max(n - 2, 0))
    return ('{"reply": "', *inner, '"}')


def tool_arguments(function: Mapping[str, object]) -> str:
    """JSON arguments for a function, valid against its JSON-schema `parameters`, filled in
    deterministically (`schema_values`)."""
    params = function.get("parameters")
    return example_json(params if isinstance(params, Mapping) else None)


def split_pieces(text: str, size: int = 4) -> tuple[str, ...]:
    """Cut `text` into `size`-character pieces: one streamed tool-argument delta per token."""
    return tuple(text[i : i + size] for i in range(0, len(text), size))


@lru_cache(maxsize=512)
def embedding_vector(seed: int, dimensions: int) -> tuple[float, ...]:
    """A unit-length vector determined by `seed` (memoised; embeddings repeat in tests)."""
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return tuple(x / norm for x in raw)


def embedding_base64(vector: Sequence[float]) -> str:
    """Little-endian float32, base64: OpenAI's `encoding_format: "base64"` (the SDK's default)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
