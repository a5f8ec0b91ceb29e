"""GatewayMetrics.add and .observe: the hot path's moves and observations, gathered per
series and written by the next flush."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from data_plane.gateway.metrics import GatewayMetrics


def sample(m: GatewayMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def landed(m: GatewayMetrics, name: str, **labels: str) -> float | None:
    """The sample once the flush the moves armed has run (it runs by itself)."""
    armed = m._flush_at
    assert armed is not None
    await asyncio.sleep(max(0.0, armed.when() - asyncio.get_running_loop().time()) + 0.05)
    assert m._flush_at is not armed
    return sample(m, name, **labels)


async def test_moves_wait_for_the_flush_then_land_summed() -> None:
    m = GatewayMetrics()
    for _ in range(3):
        m.add(m.requests, "llama", "", "chat", "2xx")
    m.add(m.prompt_tokens, "llama", "", amount=7)
    await asyncio.sleep(0)  # a pass of the loop is not enough
    assert sample(m, "inference_requests_total", model="llama", adapter="", endpoint="chat",
                  status="2xx") is None  # fmt: skip
    assert await landed(m, "inference_requests_total", model="llama", adapter="",
                        endpoint="chat", status="2xx") == 3  # fmt: skip
    assert sample(m, "inference_prompt_tokens_total", model="llama", adapter="") == 7


async def test_a_gauge_up_and_down_before_a_flush_still_exports_its_series() -> None:
    m = GatewayMetrics()
    m.add(m.replica_in_flight, "llama", "llama-0")
    m.add(m.replica_in_flight, "llama", "llama-0", amount=-1)
    m.add(m.in_flight, "llama")
    assert await landed(m, "gateway_replica_in_flight_requests", model="llama",
                        replica="llama-0") == 0  # fmt: skip
    assert sample(m, "gateway_in_flight_requests", model="llama") == 1


async def test_gathered_observations_export_as_observed_one_by_one() -> None:
    gathered, direct = GatewayMetrics(), GatewayMetrics()
    values = [0.001, 0.005, 0.0051, 0.3, 0.3, 7.0, 299.0, 301.0, 1e9]
    for value in values:
        gathered.observe(gathered.latency, value, "llama", "chat")
        gathered.observe(gathered.ttft, value / 2, "llama", "")
        direct.latency.labels("llama", "chat").observe(value)
        direct.ttft.labels("llama", "").observe(value / 2)
    assert sample(gathered, "inference_latency_seconds_count", model="llama",
                  endpoint="chat") is None  # fmt: skip
    gathered.flush()

    def histograms(m: GatewayMetrics) -> list[bytes]:
        text = generate_latest(m.registry).splitlines()
        return [line for line in text if b"_bucket" in line or b"_sum" in line]

    assert histograms(gathered) == histograms(direct)
    assert sample(gathered, "inference_latency_seconds_count", model="llama",
                  endpoint="chat") == len(values)  # fmt: skip


async def test_the_exposition_never_lags() -> None:
    m = GatewayMetrics()
    m.add(m.in_flight, "llama")
    m.observe(m.latency, 0.2, "llama", "chat")
    text = m.exposition()
    assert b'gateway_in_flight_requests{model="llama"} 1.0' in text
    assert b'inference_latency_seconds_count{endpoint="chat",model="llama"} 1.0' in text


async def test_a_forgotten_replica_is_not_revived_by_a_late_move() -> None:
    m = GatewayMetrics()
    m.add(m.replica_in_flight, "llama", "llama-0")
    m.flush()
    m.add(m.replica_in_flight, "llama", "llama-0", amount=-1)
    m.forget_replica("llama", "llama-0")
    m.flush()
    assert sample(m, "gateway_replica_in_flight_requests", model="llama", replica="llama-0") is None


def test_without_a_loop_a_move_lands_at_once() -> None:
    m = GatewayMetrics()
    m.add(m.requests, "llama", "", "chat", "4xx")
    m.observe(m.latency, 0.2, "llama", "chat")
    assert sample(m, "inference_requests_total", model="llama", adapter="", endpoint="chat",
                  status="4xx") == 1  # fmt: skip
    assert sample(m, "inference_latency_seconds_count", model="llama", endpoint="chat") == 1
