"""CapacityMonitor without the network: scrapes fed in as text, the proxy's counts, health."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ProviderConfig
from gateway.routing.capacity import CapacityMonitor, metrics_url
from tests.unit.capacity_fixtures import vllm_page

A = "http://10.0.0.1:8000/v1"
B = "http://10.0.0.2:8000/v1"


def _provider(
    name: str = "local", *, gpu: dict[str, Any] | None = None, **extra: Any
) -> ProviderConfig:
    raw: dict[str, Any] = {
        "name": name,
        "kind": "vllm",
        "api_base": A,
        "replicas": [B],
        "gpu": gpu or {"name": "H100", "hourly_usd": 2.49},
        **extra,
    }
    return ProviderConfig.model_validate(raw)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _monitor(*providers: ProviderConfig) -> tuple[CapacityMonitor, Clock]:
    clock = Clock()
    return CapacityMonitor(providers or (_provider(),), clock=clock), clock


def _replica(m: CapacityMonitor, base: str, provider: str = "local") -> Any:
    return next(r for r in m.snapshot().replicas[provider] if r.api_base == base)


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("http://h:8000/v1", "http://h:8000/metrics"),
        ("http://h:8000/v1/", "http://h:8000/metrics"),
        (
            "http://127.0.0.1:8001/llama-3.1-8b-h100/v1",
            "http://127.0.0.1:8001/llama-3.1-8b-h100/metrics",
        ),
        (
            "http://127.0.0.1:8001/llama-3.1-8b-h100@2/v1",
            "http://127.0.0.1:8001/llama-3.1-8b-h100@2/metrics",
        ),
        ("http://h:8000", "http://h:8000/metrics"),
    ],
)
def test_metrics_url(api_base: str, url: str) -> None:
    assert metrics_url(api_base) == url


def test_only_self_hosted_providers_are_monitored() -> None:
    hosted = ProviderConfig.model_validate({"name": "openai", "kind": "openai"})
    m, _ = _monitor(_provider(), hosted)
    snap = m.snapshot()
    assert list(snap.replicas) == ["local"]
    assert [r.api_base for r in snap.replicas["local"]] == [A, B]
    assert snap.has_headroom("openai") and snap.pick("openai") is None
    m.acquire("openai", "https://api.openai.com/v1")  # ignored, no error
    m.release("local", "http://elsewhere/v1")


def test_before_the_first_scrape_replicas_are_usable() -> None:
    m, _ = _monitor()
    a = _replica(m, A)
    assert (a.healthy, a.full, a.scraped_at, a.predicted_ttft_s) == (True, False, None, None)
    assert m.snapshot().has_headroom("local")


def test_a_scrape_sets_the_state() -> None:
    m, clock = _monitor()
    m.ingest(
        "local", A, vllm_page(running=(12,), kv=(0.31,), ttft=(0.03,), e2e=(1.0,), queue=(0.0,))
    )
    a = _replica(m, A)
    assert (a.running, a.waiting, a.kv_cache_usage, a.scraped_at) == (12, 0, 0.31, clock.now)
    assert a.predicted_ttft_s == pytest.approx(0.03)
    assert a.reason == "running=12 waiting=0 kv=0.31 in_flight=0 ttft~30ms"


def test_waiting_over_the_threshold_is_full_and_draining_frees_it() -> None:
    m, _ = _monitor(_provider(capacity={"max_waiting": 2}))
    m.ingest("local", A, vllm_page(running=(8,), waiting=(3,)))
    m.ingest("local", B, vllm_page(running=(8,), waiting=(2,)))
    assert _replica(m, A).full and not _replica(m, B).full
    m.ingest("local", B, vllm_page(running=(8,), waiting=(5,)))
    assert not m.snapshot().has_headroom("local") and m.snapshot().pick("local") is None
    m.ingest("local", A, vllm_page(running=(5,), waiting=(0,)))
    assert m.snapshot().pick("local").api_base == A  # type: ignore[union-attr]


def test_predicted_ttft_over_the_threshold_is_full() -> None:
    m, _ = _monitor(_provider(capacity={"max_predicted_ttft_ms": 500, "max_waiting": 100}))
    # requests hold a slot 2 s; with 8 running and 3 queued a newcomer waits ~0.9 s
    m.ingest(
        "local", A, vllm_page(running=(8,), waiting=(3,), ttft=(0.05,), e2e=(2.0,), queue=(0.0,))
    )
    a = _replica(m, A)
    assert a.full and a.predicted_ttft_s == pytest.approx(0.925)
    assert a.reason.startswith("full (ttft~925ms>500ms)")


def test_in_flight_between_scrapes_spreads_a_burst() -> None:
    """Two idle replicas: a burst of acquires alternates before any scrape says so."""
    m, _ = _monitor()
    m.ingest("local", A, vllm_page(running=(0,)))
    m.ingest("local", B, vllm_page(running=(0,)))
    sent = []
    for _ in range(6):
        base = m.snapshot().pick("local").api_base  # type: ignore[union-attr]
        m.acquire("local", base)
        sent.append(base)
    assert sent.count(A) == sent.count(B) == 3
    assert _replica(m, A).outstanding == 3 and _replica(m, A).in_flight == 3
    m.release("local", A)
    m.release("local", A)
    assert m.snapshot().pick("local").api_base == A  # type: ignore[union-attr]


def test_in_flight_since_the_scrape_joins_a_queue() -> None:
    """vLLM had a queue at the scrape: what the gateway sends next queues too → full."""
    m, _ = _monitor(_provider(capacity={"max_waiting": 1}))
    m.ingest("local", A, vllm_page(running=(4,), waiting=(1,)))
    assert not _replica(m, A).full
    m.acquire("local", A)
    a = _replica(m, A)
    assert a.full and a.reason.startswith("full (waiting=2>1)")
    m.release("local", A, ok=False)
    assert not _replica(m, A).full


def test_in_flight_cap_from_config_or_the_gpu_concurrency() -> None:
    m, _ = _monitor(_provider(capacity={"max_in_flight": 2}))
    m.acquire("local", A)
    assert not _replica(m, A).full
    m.acquire("local", A)
    assert _replica(m, A).full and _replica(m, A).reason.startswith("full (in_flight=2>=2)")
    # the pool's calibrated concurrency is shared by its replicas: 5 over 2 → 3 each
    m2, _ = _monitor(_provider(gpu={"name": "H100", "hourly_usd": 2.49, "max_concurrency": 5}))
    for _ in range(3):
        m2.acquire("local", B)
    assert _replica(m2, B).full and not _replica(m2, A).full


def test_release_never_goes_below_zero() -> None:
    m, _ = _monitor()
    m.release("local", A)
    assert _replica(m, A).in_flight == 0


def test_unhealthy_after_n_failed_scrapes_and_back_on_a_good_one() -> None:
    m, _ = _monitor(_provider(capacity={"unhealthy_after": 3}))
    m.ingest("local", A, vllm_page(running=(1,)))
    m.scrape_failed("local", A, "timed out")
    m.scrape_failed("local", A, "timed out")
    assert _replica(m, A).healthy
    m.scrape_failed("local", A, "cannot connect (Connection refused)")
    a = _replica(m, A)
    assert not a.healthy
    assert a.reason.startswith("down (3 failures: cannot connect (Connection refused))")
    assert m.snapshot().pick("local").api_base == B  # type: ignore[union-attr]
    m.ingest("local", A, vllm_page(running=(0,)))
    assert _replica(m, A).healthy and _replica(m, A).reason.startswith("running=0")


def test_proxy_connection_failures_count_too() -> None:
    m, _ = _monitor(_provider(capacity={"unhealthy_after": 2}))
    m.scrape_failed("local", B, "timed out")
    m.record_failure("local", B)
    assert not _replica(m, B).healthy
    m.release("local", B, ok=True)  # an answer is not a scrape: it stays out until one
    assert not _replica(m, B).healthy


def test_a_page_that_is_not_vllms_counts_as_a_failure() -> None:
    m, _ = _monitor(_provider(capacity={"unhealthy_after": 1}))
    m.ingest("local", A, "<html>hello</html>")
    assert not _replica(m, A).healthy
    assert "not a vLLM /metrics page" in _replica(m, A).reason


def test_latency_is_learned_across_scrapes() -> None:
    m, _ = _monitor()
    m.ingest("local", A, vllm_page(ttft=(0.02,), e2e=(1.0,), queue=(0.0,)))
    m.ingest("local", A, vllm_page(ttft=(0.02, 0.12), e2e=(1.0, 1.0), queue=(0.0, 0.0)))
    # interval means 0.02 then 0.12, weighted 0.3 → 0.05
    assert _replica(m, A).predicted_ttft_s == pytest.approx(0.05)


def test_snapshot_is_cached_until_something_changes() -> None:
    m, _ = _monitor()
    first = m.snapshot()
    assert m.snapshot() is first
    m.acquire("local", A)
    second = m.snapshot()
    assert second is not first and m.snapshot() is second
    assert first.replicas["local"][0].in_flight == 0  # snapshots are immutable
    m.ingest("local", B, vllm_page(running=(1,)))
    assert m.snapshot() is not second


async def test_start_and_close_without_self_hosted_providers() -> None:
    hosted = ProviderConfig.model_validate({"name": "openai", "kind": "openai"})
    m = CapacityMonitor([hosted])
    await m.start()
    await m.aclose()
    assert m.snapshot().replicas == {}
