"""vLLM's /metrics text: counters summed over label sets; other metrics ignored."""

from benchmarks.load.server_metrics import COUNTERS, GAUGES, parse

TEXT = """# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 1200.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 7.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:time_to_first_token_seconds_bucket{le="0.001"} 4.0
gateway_requests_total{model="m"} 99.0
broken line
"""


def test_parse_counters_and_gauges() -> None:
    assert parse(TEXT, COUNTERS) == {"generation_tokens": 1200.0, "requests_finished": 10.0}
    assert parse(TEXT, GAUGES) == {"max_waiting": 2.0, "max_kv_cache_usage": 0.25}
    assert parse("", COUNTERS) == {}
