"""What one benchmark request is (`RequestInput`) and what measuring it gave (`RequestResult`).

Every program — the load benchmark, the policy day, the overhead runs — sends its requests through
`benchmarks.common.request` and reads this one result type. Its fields are vLLM's
`RequestFuncOutput` (`vllm/benchmarks/lib/endpoint_request_func.py`: success, error, ttft, itl,
latency, prompt_len, output tokens, start_time), plus what our programs also read: the HTTP
status, the usage the server reported, the gateway's `x-request-id` / `x-gateway-provider`
headers, and, when asked for, the arrival time of each chunk that carried content.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestInput:
    """One request, serialised once up front so that sending it costs no encoding."""

    url: str
    body: bytes
    prompt_len: int = 0  # the workload's target prompt tokens; replaced by usage.prompt_tokens
    output_len: int = 0
    stream: bool = True
    headers: Mapping[str, str] | None = None  # besides the session's own


@dataclass(slots=True)
class RequestResult:
    """One request as measured. Times are `time.perf_counter()` seconds.

    A request that failed has `success` False and `error` set; what was measured before the
    failure stays (a stream cut off after its first token keeps its `ttft` and `chunks`).
    """

    success: bool = False
    streamed: bool = True
    ttft: float = 0.0  # start → first SSE event with choices; valid when `chunks` > 0
    itl: array[float] = field(default_factory=lambda: array("d"))  # one gap per later chunk
    latency: float = 0.0  # E2EL: start → last event with choices (or the whole JSON body)
    start_time: float = 0.0  # just before the POST
    queue_time: float = 0.0  # waited on the client's max-concurrency semaphore, before start
    prompt_len: int = 0  # usage.prompt_tokens when reported, else the input's prompt_len
    output_tokens: int = 0  # usage.completion_tokens
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens
    usage_reported: bool = False
    chunks: int = 0  # SSE events carrying choices (1 for a JSON answer)
    status: int = 0  # HTTP status; 0 when no response came
    error: str = ""
    request_id: str | None = None  # x-request-id: the gateway's ledger row id
    provider: str | None = None  # x-gateway-provider
    content_times: list[float] | None = None  # each chunk with delta content, when asked for

    @property
    def first_token(self) -> bool:
        """Whether a chunk with choices arrived (so `ttft` was measured)."""
        return self.chunks > 0
