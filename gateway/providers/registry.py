"""Provider kind → adapter. Adding an API family is a new module plus one entry here."""

from __future__ import annotations

from gateway.core import Operation
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import Adapter
from gateway.providers.gemini import GeminiAdapter
from gateway.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "vllm": OpenAIAdapter(),  # vLLM serves the OpenAI wire format, usage chunk included
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}


def adapter_for(kind: str) -> Adapter:
    return ADAPTERS[kind]


def operations(kind: str) -> frozenset[Operation]:
    """What a provider kind can do upstream: routing's endpoint eligibility."""
    return ADAPTERS[kind].operations
