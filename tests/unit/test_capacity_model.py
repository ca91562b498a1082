"""The pure capacity model: reading vLLM's /metrics, latency learning, TTFT prediction, full rules,
and the snapshot's headroom / pick / describe."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.routing.capacity_model import (
    CapacitySnapshot,
    Latency,
    Limits,
    Load,
    MetricsError,
    ReplicaState,
    Totals,
    VllmSample,
    estimate_load,
    full_because,
    parse_vllm_metrics,
    predict_ttft_s,
    replica_state,
)
from gateway.simulator.profiles import PROFILES
from gateway.simulator.upstream import Upstream
from tests.unit.capacity_fixtures import vllm_page

ZERO = Totals()
NO_LIMITS = Limits()


def close(t: Totals, seconds: float, observations: float) -> bool:
    return t.seconds == pytest.approx(seconds) and t.observations == observations


# --- parsing -----------------------------------------------------------------------------------


def test_reads_a_current_vllm_page() -> None:
    page = vllm_page(
        running=(12,), waiting=(2,), kv=(0.31,), ttft=(0.02, 0.04), e2e=(1.0, 2.0), queue=(0.0, 0.5)
    )
    s = parse_vllm_metrics(page)
    assert (s.running, s.waiting, s.kv_cache_usage) == (12, 2, 0.31)
    assert close(s.ttft, 0.06, 2)
    assert s.e2e == Totals(3.0, 2)
    assert s.queue == Totals(0.5, 2)


def test_sums_engines_and_takes_the_fullest_kv_cache() -> None:
    """Data parallel: one `engine` label value per engine; requests add up, KV usage does not."""
    s = parse_vllm_metrics(vllm_page(running=(3, 4), waiting=(0, 1), kv=(0.2, 0.7), ttft=(0.1,)))
    assert (s.running, s.waiting, s.kv_cache_usage) == (7, 1, 0.7)
    assert s.ttft == Totals(0.2, 2)


@pytest.mark.parametrize("names", ["new", "both", "old"])
def test_kv_cache_usage_under_either_name(names: str) -> None:
    """vllm:gpu_cache_usage_perc until 0.9.1, both 0.9.2–0.11, vllm:kv_cache_usage_perc since."""
    page = vllm_page(kv=(0.42,), kv_names=names)  # type: ignore[arg-type]
    assert parse_vllm_metrics(page).kv_cache_usage == 0.42


def test_the_new_kv_name_wins_when_both_disagree() -> None:
    page = (
        'vllm:num_requests_running{engine="0",model_name="m"} 1.0\n'
        'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.9\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.4\n'
    )
    assert parse_vllm_metrics(page).kv_cache_usage == 0.4


def test_agrees_with_prometheus_client_on_a_full_page() -> None:
    """The hand reader against the library's parser, on a two-engine page with every metric."""
    page = vllm_page(
        running=(5, 6),
        waiting=(1, 0),
        kv=(0.5, 0.25),
        ttft=(0.03, 0.3),
        e2e=(1.5, 4.0),
        queue=(0.2, 0.0),
        kv_names="both",
    )
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    s = parse_vllm_metrics(page)
    assert s.running == totals["vllm:num_requests_running"]
    assert s.waiting == totals["vllm:num_requests_waiting"]
    for got, name in (
        (s.ttft, "vllm:time_to_first_token_seconds"),
        (s.e2e, "vllm:e2e_request_latency_seconds"),
        (s.queue, "vllm:request_queue_time_seconds"),
    ):
        assert close(got, totals[f"{name}_sum"], totals[f"{name}_count"])


def test_reads_the_simulators_page() -> None:
    up = Upstream("llama-3.1-8b-h100", PROFILES["llama-3.1-8b-h100"])
    up.running, up.kv_tokens = 3, 50_000
    up.finish(100, 0, 20, "stop", ttft=0.05, e2e=0.5, queued=0.1)
    up.finish(100, 0, 20, "length", ttft=0.07, e2e=0.7, queued=0.0)
    s = parse_vllm_metrics(up.metrics_text().decode())
    assert (s.running, s.waiting, s.kv_cache_usage) == (3, 0, 0.1)
    assert close(s.ttft, 0.12, 2) and close(s.e2e, 1.2, 2) and close(s.queue, 0.1, 2)


def test_label_values_with_spaces_braces_and_a_timestamp() -> None:
    page = (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="my model {v2}"} 4.0 1700000000000\n'
        "vllm:num_requests_waiting 2\n"
        'vllm:num_requests_waiting_by_reason{reason="capacity"} 9\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="x"} NaN\n'
    )
    s = parse_vllm_metrics(page)
    assert (s.running, s.waiting, s.kv_cache_usage) == (4, 2, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html>not found</html>",
        "# HELP x y\nprocess_cpu_seconds_total 1.0\n",
    ],
)
def test_a_page_without_vllm_gauges_is_an_error(text: str) -> None:
    with pytest.raises(MetricsError, match="num_requests_running"):
        parse_vllm_metrics(text)


def test_an_unreadable_value_is_an_error() -> None:
    with pytest.raises(MetricsError, match="unreadable"):
        parse_vllm_metrics('vllm:num_requests_running{engine="0"} lots\n')


# --- latency learning and the TTFT prediction ---------------------------------------------------


def _sample(
    running: float = 0,
    waiting: float = 0,
    ttft: Totals = ZERO,
    e2e: Totals = ZERO,
    queue: Totals = ZERO,
) -> VllmSample:
    return VllmSample(running, waiting, 0.0, ttft, e2e, queue)


def test_latency_learns_the_interval_means() -> None:
    first = _sample(ttft=Totals(0.2, 4), e2e=Totals(4.0, 4), queue=Totals(0.0, 4))
    lat = Latency().learn(None, first)
    assert (lat.ttft_s, lat.e2e_s, lat.queue_s) == (0.05, 1.0, 0.0)
    # next interval: 2 requests with 0.45 s TTFT (0.4 s of it queued), 3 s e2e
    second = _sample(ttft=Totals(1.1, 6), e2e=Totals(10.0, 6), queue=Totals(0.8, 6))
    lat2 = lat.learn(first, second, alpha=0.5)
    assert lat2.ttft_s == pytest.approx(0.25)
    assert lat2.e2e_s == pytest.approx(2.0)
    assert lat2.queue_s == pytest.approx(0.2)


def test_latency_keeps_its_means_through_quiet_intervals_and_restarts() -> None:
    lat = Latency(0.05, 1.0, 0.0)
    busy = _sample(ttft=Totals(0.2, 4), e2e=Totals(4.0, 4), queue=Totals(0.0, 4))
    assert lat.learn(busy, busy) == lat  # nothing finished since
    restarted = _sample(ttft=Totals(0.15, 1), e2e=Totals(2.0, 1), queue=Totals(0.0, 1))
    after = lat.learn(busy, restarted, alpha=1.0)  # counters went backwards: all of it is new
    assert (after.ttft_s, after.e2e_s) == (0.15, 2.0)


def test_no_prediction_before_anything_was_observed() -> None:
    assert predict_ttft_s(Latency(), running=0, waiting=0) is None


def test_prediction_without_a_queue_is_the_unqueued_ttft() -> None:
    assert predict_ttft_s(Latency(ttft_s=0.30, e2e_s=2.0, queue_s=0.25), 8, 0) == pytest.approx(
        0.05
    )


def test_prediction_with_a_queue_adds_the_drain_time() -> None:
    """8 slots, each held 2 s: one frees every 0.25 s; 3 ahead → (3 + ½) × 0.25 s of queueing."""
    lat = Latency(ttft_s=0.05, e2e_s=2.0, queue_s=0.0)
    assert predict_ttft_s(lat, running=8, waiting=3) == pytest.approx(0.05 + 3.5 * 0.25)
    # grows with the queue, shrinks with the batch
    assert predict_ttft_s(lat, 8, 6) > predict_ttft_s(lat, 8, 3) > predict_ttft_s(lat, 16, 3)  # type: ignore[operator]


def test_prediction_with_a_queue_but_no_finished_request_is_unknown() -> None:
    assert predict_ttft_s(Latency(ttft_s=0.05), running=4, waiting=2) is None


# --- load between scrapes and the full rules ----------------------------------------------------


def test_load_before_any_scrape_is_the_gateways_own() -> None:
    assert estimate_load(None, in_flight=3, in_flight_at_scrape=0) == Load(3, 0)


def test_requests_sent_since_the_scrape_run_when_there_was_no_queue() -> None:
    assert estimate_load(_sample(running=4), in_flight=6, in_flight_at_scrape=2) == Load(8, 0)


def test_requests_sent_since_the_scrape_queue_behind_a_queue() -> None:
    assert estimate_load(_sample(running=4, waiting=1), 5, 2) == Load(4, 4)


def test_requests_back_since_the_scrape_leave() -> None:
    assert estimate_load(_sample(running=4, waiting=2), 1, 4) == Load(3, 0)
    assert estimate_load(_sample(running=4), 0, 6) == Load(0, 0)


def test_the_replica_holds_at_least_the_gateways_outstanding_requests() -> None:
    """A scrape taken before the gateway's requests arrived reads 0; in_flight says otherwise."""
    assert estimate_load(_sample(running=0), in_flight=5, in_flight_at_scrape=5) == Load(5, 0)


def test_full_rules() -> None:
    limits = Limits(max_waiting=1, max_predicted_ttft_s=0.5, max_in_flight=4)
    assert full_because(limits, Load(3, 1), 0.1, 3) is None
    assert full_because(limits, Load(3, 2), 0.1, 3) == "waiting=2>1"
    assert full_because(limits, Load(3, 0), 0.9, 3) == "ttft~900ms>500ms"
    assert full_because(limits, Load(3, 0), None, 4) == "in_flight=4>=4"
    assert full_because(Limits(), Load(100, 0), 99.0, 1000) is None  # only the queue counts


# --- replica states and the snapshot ------------------------------------------------------------


def _state(
    base: str,
    *,
    running: float = 0,
    waiting: float = 0,
    in_flight: int = 0,
    failures: int = 0,
    limits: Limits = NO_LIMITS,
    kv: float = 0.0,
) -> ReplicaState:
    return replica_state(
        "local",
        base,
        limits=limits,
        sample=VllmSample(running, waiting, kv),
        latency=Latency(),
        in_flight=in_flight,
        in_flight_at_scrape=in_flight,
        scraped_at=1.0,
        failures=failures,
        unhealthy_after=3,
        last_error="timed out",
    )


def test_replica_state_reason() -> None:
    ok = _state("a", running=12, kv=0.31, in_flight=2)
    assert (ok.healthy, ok.full, ok.outstanding) == (True, False, 12)
    assert ok.reason == "running=12 waiting=0 kv=0.31 in_flight=2"
    full = _state("a", running=12, waiting=3)
    assert full.full and full.reason.startswith("full (waiting=3>0) running=12")
    down = _state("a", failures=3)
    assert not down.healthy and down.reason.startswith("down (3 failures: timed out)")


def test_replica_state_with_latency_shows_its_prediction() -> None:
    s = replica_state(
        "local",
        "a",
        limits=Limits(max_predicted_ttft_s=0.2),
        sample=VllmSample(8, 0, 0.5),
        latency=Latency(0.35, 2.0, 0.05),
        in_flight=0,
        in_flight_at_scrape=0,
        scraped_at=1.0,
        failures=0,
        unhealthy_after=3,
    )
    assert s.predicted_ttft_s == pytest.approx(0.3)
    assert s.full and s.reason.startswith("full (ttft~300ms>200ms)") and "ttft~300ms" in s.reason


def test_an_unscraped_replica_is_usable() -> None:
    s = replica_state(
        "local",
        "a",
        limits=Limits(max_in_flight=2),
        sample=None,
        latency=Latency(),
        in_flight=1,
        in_flight_at_scrape=0,
        scraped_at=None,
        failures=0,
        unhealthy_after=3,
    )
    assert (s.healthy, s.full, s.outstanding, s.reason) == (
        True,
        False,
        1,
        "not scraped yet in_flight=1",
    )


def test_pick_is_the_least_outstanding_available_replica() -> None:
    snap = CapacitySnapshot(
        {
            "local": (
                _state("a", running=5, in_flight=5),
                _state("b", running=2, in_flight=1),
                _state("c", running=0, failures=3),  # down
                _state("d", running=1, waiting=1),  # full
            )
        }
    )
    picked = snap.pick("local")
    assert picked is not None and picked.api_base == "b"
    assert snap.has_headroom("local")


def test_pick_breaks_ties_on_kv_cache_then_order() -> None:
    snap = CapacitySnapshot(
        {"local": (_state("a", kv=0.5), _state("b", kv=0.2), _state("c", kv=0.2))}
    )
    assert snap.pick("local").api_base == "b"  # type: ignore[union-attr]


def test_no_headroom_when_every_replica_is_full_or_down() -> None:
    snap = CapacitySnapshot({"local": (_state("a", waiting=2), _state("b", failures=5))})
    assert not snap.has_headroom("local")
    assert snap.pick("local") is None
    assert snap.describe("local") == (
        "no replica free: 1: full (waiting=2>0) running=0 waiting=2 kv=0.00 in_flight=0; "
        "2: down (5 failures: timed out) running=0 waiting=0 kv=0.00 in_flight=0"
    )


def test_providers_not_monitored() -> None:
    snap = CapacitySnapshot({})
    assert snap.has_headroom("openai")
    assert snap.pick("openai") is None
    assert snap.describe("openai") == ""


def test_describe() -> None:
    one = CapacitySnapshot({"local": (_state("a", running=3),)})
    assert one.describe("local") == "running=3 waiting=0 kv=0.00 in_flight=0"
    two = CapacitySnapshot({"local": (_state("a", running=3), _state("b", running=1))})
    assert two.describe("local") == "replica 2/2 (2 free): running=1 waiting=0 kv=0.00 in_flight=0"
