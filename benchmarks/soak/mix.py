"""What the soak sends: request `i` of the run, decided by `i` alone (pure, repeatable).

Every request has a system prompt of its own (the router remembers prompt prefixes: a soak of
distinct prompts proves that memory is bounded) and cycles through every client API (chat,
Anthropic Messages, Responses), every provider kind the simulator speaks (openai, vllm,
anthropic, gemini), streamed and not. A fixed share of requests is abandoned by the client:
a stream after its first bytes, a whole answer before it comes (the client's timeout is
shorter than the simulated upstream takes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

ENDPOINTS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "responses": "/v1/responses",
}
KINDS = ("openai", "vllm", "anthropic", "gemini")
WORDS = "alpha beta gamma delta ledger stream token route budget cache prompt answer".split()


@dataclass(frozen=True, slots=True)
class Planned:
    index: int
    endpoint: str  # a key of ENDPOINTS
    kind: str  # the provider kind of the model asked for (the model is named after it)
    stream: bool
    disconnect: bool  # the client leaves early
    body: bytes


def plan(i: int, disconnect_every: int = 50) -> Planned:
    rnd = random.Random(i)
    endpoint = tuple(ENDPOINTS)[i % 3]
    kind = KINDS[(i // 3) % 4]
    stream = (i // 12) % 2 == 1
    disconnect = disconnect_every > 0 and i % disconnect_every == disconnect_every - 1
    system = f"You are soak assistant #{i} ({' '.join(rnd.choices(WORDS, k=12))})."
    question = f"Question {i}: {' '.join(rnd.choices(WORDS, k=8))}?"
    # an abandoned whole answer must still be running when the client leaves: ask for more
    tokens = 80 if disconnect else 12
    return Planned(
        i,
        endpoint,
        kind,
        stream,
        disconnect,
        _body(endpoint, kind, stream, system, question, tokens),
    )


def _body(
    endpoint: str, model: str, stream: bool, system: str, question: str, tokens: int
) -> bytes:
    body: dict[str, Any]
    if endpoint == "chat":
        body = {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": question},
            ],
            "max_tokens": tokens,
        }
    elif endpoint == "messages":
        body = {
            "model": model,
            "system": system,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": tokens,
        }
    else:
        body = {
            "model": model,
            "instructions": system,
            "input": question,
            "max_output_tokens": tokens,
        }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


# Upstream faults for the whole run (the simulator's `/sim/faults` rules, on every upstream):
# errors before the first byte, a hung request, a stream cut midway, a malformed event, an
# in-stream error. Rates are per request, the first rule whose draw hits applies.
FAULTS: list[dict[str, Any]] = [
    {"upstream": "*", "kind": "status", "status": 500, "rate": 0.01},
    {"upstream": "*", "kind": "status", "status": 429, "rate": 0.005, "retry_after": 0},
    {"upstream": "*", "kind": "status", "status": 503, "rate": 0.005},
    {"upstream": "*", "kind": "drop", "rate": 0.005, "drop_after_chunks": 2},
    {"upstream": "*", "kind": "malformed", "rate": 0.003, "drop_after_chunks": 1},
    {"upstream": "*", "kind": "stream_error", "rate": 0.003, "drop_after_chunks": 1},
]


def gateway_config(sim_url: str, database_url: str, journal_dir: str) -> dict[str, Any]:
    """One model per provider kind, each on the simulator's `realistic-small` upstream (50 ms
    to the first token, 5 ms a token: slow enough for a client to leave midway)."""
    base = f"{sim_url}/realistic-small"
    providers = [
        {"name": "openai", "kind": "openai", "api_base": f"{base}/v1", "api_key": "sk-soak-openai"},
        {"name": "vllm", "kind": "vllm", "api_base": f"{base}/v1"},
        {"name": "anthropic", "kind": "anthropic", "api_base": base, "api_key": "sk-ant-soak"},
        {"name": "gemini", "kind": "gemini", "api_base": base, "api_key": "soak-gemini"},
    ]
    upstream = {
        "openai": "gpt-4o-mini",
        "vllm": "meta-llama/Llama-3.1-8B-Instruct",
        "anthropic": "claude-3-5-haiku-20241022",
        "gemini": "gemini-1.5-flash",
    }
    price = {"input_per_mtok": 1, "output_per_mtok": 2}
    return {
        "database_url": database_url,
        "log_level": "warning",
        "ledger": {"journal_dir": journal_dir},
        "providers": [{**p, "timeout_s": 10} for p in providers],
        "models": [
            {"name": k, "provider": k, "upstream_model": upstream[k], "price": price} for k in KINDS
        ],
    }
