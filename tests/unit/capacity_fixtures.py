"""vLLM /metrics pages for the capacity tests, written by prometheus_client as vLLM writes them.

The metric names, HELP texts, label names and buckets are those of vLLM's
`vllm/v1/metrics/loggers.py` (`PrometheusStatLogger.__init__`; shared/reference/ECONOMICS.md
§4): v0.9.2–0.11 expose both `vllm:gpu_cache_usage_perc` (deprecated) and
`vllm:kv_cache_usage_perc`, later versions only the new name, older ones only the old. vLLM
registers on prometheus_client's default registry, so its page also carries the process, GC and
platform collectors' metrics; a data-parallel server has one `engine` label value per engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LABELS = ["model_name", "engine"]
TTFT_BUCKETS = [
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
]
REQUEST_LATENCY_BUCKETS = [
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
]
ITL_BUCKETS = [
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
]
KvNames = Literal["new", "both", "old"]


def _1_2_5(max_value: int) -> list[int]:
    """vLLM's build_1_2_5_buckets."""
    out: list[int] = []
    exponent = 0
    while True:
        for m in (1, 2, 5):
            if m * 10**exponent > max_value:
                return out
            out.append(m * 10**exponent)
        exponent += 1


def vllm_page(
    *,
    running: Sequence[float] = (0,),
    waiting: Sequence[float] = (0,),
    kv: Sequence[float] = (0.0,),
    ttft: Sequence[float] = (),
    e2e: Sequence[float] = (),
    queue: Sequence[float] = (),
    kv_names: KvNames = "new",
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
) -> str:
    """One vLLM server's /metrics: one engine per entry of `running`; the observations in
    `ttft`/`e2e`/`queue` are made on every engine."""
    r = CollectorRegistry()
    GCCollector(registry=r)
    PlatformCollector(registry=r)
    ProcessCollector(registry=r)
    g_running = Gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        LABELS,
        registry=r,
    )
    g_waiting = Gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        LABELS,
        registry=r,
    )
    kv_gauges = []
    if kv_names in ("old", "both"):
        kv_gauges.append(
            Gauge(
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage."
                "DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
                LABELS,
                registry=r,
            )
        )
    if kv_names in ("new", "both"):
        kv_gauges.append(
            Gauge(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                LABELS,
                registry=r,
            )
        )
    counters = [
        Counter(name, doc, LABELS, registry=r)
        for name, doc in (
            (
                "vllm:prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.",
            ),
            ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."),
            ("vllm:num_preemptions", "Cumulative number of preemption from the engine."),
            ("vllm:prompt_tokens", "Number of prefill tokens processed."),
            ("vllm:generation_tokens", "Number of generation tokens processed."),
        )
    ]
    success = Counter(
        "vllm:request_success",
        "Count of successfully processed requests.",
        [*LABELS, "finished_reason"],
        registry=r,
    )
    others = [
        Histogram(name, doc, LABELS, buckets=buckets, registry=r)
        for name, doc, buckets in (
            ("vllm:request_prompt_tokens", "Number of prefill tokens processed.", _1_2_5(131072)),
            (
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                _1_2_5(131072),
            ),
            (
                "vllm:iteration_tokens_total",
                "Histogram of number of tokens per engine_step.",
                [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
            ),
            (
                "vllm:request_params_max_tokens",
                "Histogram of the max_tokens request parameter.",
                _1_2_5(131072),
            ),
            (
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                ITL_BUCKETS,
            ),
            (
                "vllm:request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.",
                REQUEST_LATENCY_BUCKETS,
            ),
            (
                "vllm:request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.",
                REQUEST_LATENCY_BUCKETS,
            ),
            (
                "vllm:request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.",
                REQUEST_LATENCY_BUCKETS,
            ),
        )
    ]
    h_ttft = Histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        LABELS,
        buckets=TTFT_BUCKETS,
        registry=r,
    )
    h_e2e = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        LABELS,
        buckets=REQUEST_LATENCY_BUCKETS,
        registry=r,
    )
    h_queue = Histogram(
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        LABELS,
        buckets=REQUEST_LATENCY_BUCKETS,
        registry=r,
    )
    for engine, (run, wait, usage) in enumerate(zip(running, waiting, kv, strict=True)):
        labels = (model, str(engine))
        g_running.labels(*labels).set(run)
        g_waiting.labels(*labels).set(wait)
        for g in kv_gauges:
            g.labels(*labels).set(usage)
        for c in counters:
            c.labels(*labels).inc(100)
        for reason in ("stop", "length", "abort"):
            success.labels(*labels, reason)
        for h in others:
            h.labels(*labels).observe(1)
        for hist, values in ((h_ttft, ttft), (h_e2e, e2e), (h_queue, queue)):
            child = hist.labels(*labels)
            for v in values:
                child.observe(v)
    return generate_latest(r).decode()
