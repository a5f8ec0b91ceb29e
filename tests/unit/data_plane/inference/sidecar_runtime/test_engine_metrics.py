from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from data_plane.inference.sidecar_runtime.engine_metrics import StaticCollector, normalize

VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 120.0
vllm:generation_tokens_created{engine="0",model_name="m"} 1.7e9
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 4.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 5.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 5.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 7.5
# HELP vllm:lora_requests_info Running stats on lora requests.
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9
"""


def render() -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(normalize(VLLM_TEXT)))
    return generate_latest(registry).decode()


def test_renamed_with_bounded_labels_and_summed_over_engines() -> None:
    text = render()
    assert 'engine_requests_running{model="m"} 5.0' in text
    assert 'engine_generation_tokens_total{model="m"} 120.0' in text
    assert 'engine_requests_finished_total{finished_reason="stop",model="m"} 4.0' in text
    assert 'engine_request_latency_seconds_bucket{le="+Inf",model="m"} 5.0' in text
    assert 'engine_request_latency_seconds_sum{model="m"} 7.5' in text


def test_no_vllm_names_no_unbounded_labels() -> None:
    text = render()
    assert "vllm:" not in text
    assert "running_lora_adapters" not in text
    assert "_created" not in text
    assert 'engine="' not in text


def test_empty_or_foreign_text() -> None:
    assert normalize("") == []
    assert normalize("# TYPE other gauge\nother 1\n") == []
