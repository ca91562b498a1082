"""The config's upstreams: providers (an API family's endpoint, its replicas, the GPUs behind a
self-hosted one, how its capacity is watched) and the models served through them (prices,
capabilities, prompt caching)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.config.base import _Strict

ProviderKind = Literal["openai", "vllm", "anthropic", "gemini"]

DEFAULT_API_BASES: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


class GPUConfig(_Strict):
    """The self-hosted GPUs behind a provider: a fixed cost, amortised per token."""

    name: str
    count: int = Field(1, ge=1)
    hourly_usd: float = Field(ge=0)
    # Aggregate tokens/s (input + output) the pool sustains within its SLO: what amortises the
    # hourly price into $/token. `gateway bench calibrate` measures it; until then this value.
    throughput_tokens_per_s: float = Field(1500.0, gt=0)
    # Concurrent requests the pool serves within its SLO (calibrated the same way).
    max_concurrency: int | None = Field(None, ge=1)


class CapacityConfig(_Strict):
    """When a vLLM replica counts as full, and how it is watched (its /metrics, /health)."""

    scrape_interval_s: float = Field(1.0, gt=0)
    max_waiting: int = Field(0, ge=0)  # full when vLLM reports more queued requests than this
    max_predicted_ttft_ms: float | None = Field(None, gt=0)
    max_in_flight: int | None = Field(None, ge=1)  # the gateway's own outstanding requests
    unhealthy_after: int = Field(3, ge=1)  # consecutive failed scrapes take a replica out


class ProviderConfig(_Strict):
    name: str = Field(min_length=1)
    kind: ProviderKind
    api_base: str = ""  # defaults by kind (DEFAULT_API_BASES); required for vllm
    api_key: str | None = Field(None, repr=False)  # never in a repr, hence never in a log line
    anthropic_version: str = "2023-06-01"  # kind: anthropic only
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    max_connections: int = Field(1000, ge=1)
    # An idle pooled connection is dropped after this long. It must stay below the upstream's
    # own keep-alive, or a request can go out on a socket the server is closing (a 502 "closed
    # the connection"): vLLM's API server keeps idle connections 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE
    # in vllm/envs.py, passed to uvicorn as timeout_keep_alive), aiohttp's pool 15 s by default.
    keepalive_s: float = Field(4.0, gt=0)
    simulated: bool = False  # shown in /v1/models and the startup log so nobody mistakes it
    gpu: GPUConfig | None = None
    # More replicas of the same server (vLLM): api_base is the first; requests go to the least
    # loaded healthy one.
    replicas: tuple[str, ...] = ()
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    # The upstream serves OpenAI's Responses API (`{api_base}/responses`): `/v1/responses`
    # requests are sent to it as the client wrote them instead of through chat completions.
    # kind: openai or vllm only.
    responses_api: bool = False

    @property
    def api_bases(self) -> tuple[str, ...]:
        return (self.api_base, *self.replicas)

    @property
    def self_hosted(self) -> bool:
        return self.gpu is not None

    @model_validator(mode="after")
    def _default_api_base(self) -> ProviderConfig:
        if not self.api_base:
            if self.kind not in DEFAULT_API_BASES:
                raise ValueError(f"api_base is required for kind {self.kind!r}")
            object.__setattr__(self, "api_base", DEFAULT_API_BASES[self.kind])
        if self.responses_api and self.kind not in ("openai", "vllm"):
            raise ValueError(f"responses_api: kind {self.kind!r} has no Responses API")
        return self


class PriceOverride(_Strict):
    """USD per 1M tokens; overrides (or stands in for) litellm's price table entry."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)


class Capabilities(_Strict):
    context_window: int = Field(128_000, ge=1)
    tools: bool = True
    vision: bool = False
    json_mode: bool = True


class PromptCacheConfig(_Strict):
    ttl_s: float = Field(300.0, ge=0)
    min_tokens: int = Field(1024, ge=0)


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    provider: str
    upstream_model: str | None = None
    price: PriceOverride | None = None
    # the price table key when it differs from upstream_model (e.g. "gemini/gemini-2.0-flash")
    price_key: str | None = None
    # Anthropic requires max_tokens; used when the client sends neither max_tokens nor
    # max_completion_tokens
    default_max_tokens: int = Field(4096, ge=1)
    # Anthropic: mark a long static system prompt as cacheable (cache_control: ephemeral)
    auto_cache_system_prompt: bool = False
    # routing: what the model can do and how good it is
    quality_tier: int = Field(1, ge=0)
    capabilities: Capabilities = Field(default_factory=lambda: Capabilities())
    # the provider's prompt cache, for expected-cost estimates: a prefix of at least
    # `min_tokens` seen within `ttl_s` is expected to be read from cache
    prompt_cache: PromptCacheConfig = Field(default_factory=lambda: PromptCacheConfig())

    @property
    def target_model(self) -> str:
        return self.upstream_model or self.name
