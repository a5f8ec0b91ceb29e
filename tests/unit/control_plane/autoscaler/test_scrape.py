"""Reading engine and gateway metrics text (no sockets)."""

from __future__ import annotations

import pytest

from control_plane.autoscaler.actuator import read_pod
from control_plane.autoscaler.scrape import (
    EngineSample,
    MetricsFormatError,
    parse_engine_metrics,
    parse_gateway_demand,
    ttft_between,
)

VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="chat"} 3.0
vllm:num_requests_running{engine="1",model_name="chat"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="chat"} 4.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="chat"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="chat"} 0.5
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="chat"} 1.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="chat"} 10.0
vllm:time_to_first_token_seconds_count{model_name="chat"} 10.0
vllm:time_to_first_token_seconds_sum{model_name="chat"} 4.0
"""

GATEWAY_TEXT = """\
# TYPE gateway_in_flight_requests gauge
gateway_in_flight_requests{model="chat"} 7.0
gateway_in_flight_requests{model="code"} 1.0
# TYPE gateway_queued_requests gauge
gateway_queued_requests{model="code",reason="cold_start"} 1.5
gateway_queued_requests{model="code",reason="replica_cap"} 0.5
"""


def test_engine_metrics_sum_engines_and_take_the_fullest_cache() -> None:
    s = parse_engine_metrics(VLLM_TEXT)
    assert s == EngineSample(
        running=5.0, waiting=4.0, kv_cache_usage=0.5, ttft_sum=4.0, ttft_count=10.0
    )


def test_the_sidecars_re_export_reads_the_same() -> None:
    """In a cluster the autoscaler reads engine load from the sidecar (network policy)."""
    from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics

    sidecar_text = SidecarMetrics().render(VLLM_TEXT).decode()
    assert "vllm:" not in sidecar_text
    assert parse_engine_metrics(sidecar_text) == parse_engine_metrics(VLLM_TEXT)


def test_pods_are_scraped_through_their_sidecar() -> None:
    pod = {"metadata": {"name": "p", "uid": "u"}, "status": {"podIP": "10.0.0.7"}}
    replica = read_pod(pod)
    assert replica is not None
    assert replica.metrics_url == "http://10.0.0.7:8090/metrics"


def test_older_vllm_cache_metric_is_read() -> None:
    text = VLLM_TEXT.replace("kv_cache_usage_perc", "gpu_cache_usage_perc")
    assert parse_engine_metrics(text).kv_cache_usage == 0.5


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("<html>502 Bad Gateway</html>", id="html"),
        pytest.param("vllm:num_requests_running 1\n", id="no-waiting"),
        pytest.param("vllm:num_requests_running{x= 1\n", id="broken-labels"),
    ],
)
def test_unreadable_engine_metrics_are_refused(text: str) -> None:
    with pytest.raises(MetricsFormatError):
        parse_engine_metrics(text)


@pytest.mark.parametrize(
    ("before", "after", "want"),
    [
        pytest.param((4.0, 10.0), (10.0, 13.0), 2.0, id="three-new-requests"),
        pytest.param((4.0, 10.0), (4.0, 10.0), None, id="nothing-new"),
        pytest.param((4.0, 10.0), (0.5, 1.0), None, id="engine-restarted"),
        pytest.param(None, (4.0, 10.0), None, id="first-scrape"),
        pytest.param((None, None), (4.0, 10.0), None, id="no-histogram"),
    ],
)
def test_ttft_over_the_interval(
    before: tuple[float | None, float | None] | None,
    after: tuple[float, float],
    want: float | None,
) -> None:
    b = None if before is None else EngineSample(0, 0, None, before[0], before[1])
    a = EngineSample(0, 0, None, after[0], after[1])
    assert ttft_between(b, a) == want


def test_gateway_demand_per_model() -> None:
    assert parse_gateway_demand(GATEWAY_TEXT) == {"chat": (7.0, 0.0), "code": (1.0, 2.0)}


def test_a_gateway_that_served_nothing_yet_reports_no_demand() -> None:
    text = "# HELP gateway_in_flight_requests Requests being served, by model.\n"
    text += "# TYPE gateway_in_flight_requests gauge\n"
    assert parse_gateway_demand(text) == {}


def test_gateway_without_in_flight_metric_is_refused() -> None:
    with pytest.raises(MetricsFormatError):
        parse_gateway_demand("# TYPE other gauge\nother 1\n")


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(
            {
                "metadata": {"name": "a", "uid": "u1"},
                "status": {
                    "podIP": "10.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            (True, False),
            id="ready",
        ),
        pytest.param(
            {"metadata": {"name": "b"}, "status": {"phase": "Pending"}}, (False, True), id="loading"
        ),
        pytest.param(
            {"metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
            None,
            id="terminating",
        ),
        pytest.param({"metadata": {"name": "d"}, "status": {"phase": "Failed"}}, None, id="failed"),
    ],
)
def test_pod_states(obj: dict[str, object], want: tuple[bool, bool] | None) -> None:
    pod = read_pod(obj)
    assert (None if pod is None else (pod.ready, pod.loading)) == want
