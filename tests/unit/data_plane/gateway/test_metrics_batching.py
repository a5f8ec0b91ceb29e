"""GatewayMetrics.add: the hot path's moves, summed per series within a loop pass."""

from __future__ import annotations

import asyncio

from data_plane.gateway.metrics import GatewayMetrics


def sample(m: GatewayMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def test_moves_wait_for_the_end_of_the_pass_then_land_summed() -> None:
    m = GatewayMetrics()
    for _ in range(3):
        m.add(m.requests, "llama", "", "chat", "2xx")
    m.add(m.prompt_tokens, "llama", "", amount=7)
    assert sample(m, "inference_requests_total", model="llama", adapter="", endpoint="chat",
                  status="2xx") is None  # fmt: skip
    await asyncio.sleep(0)
    assert sample(m, "inference_requests_total", model="llama", adapter="", endpoint="chat",
                  status="2xx") == 3  # fmt: skip
    assert sample(m, "inference_prompt_tokens_total", model="llama", adapter="") == 7


async def test_a_gauge_up_and_down_in_one_pass_still_exports_its_series() -> None:
    m = GatewayMetrics()
    m.add(m.replica_in_flight, "llama", "llama-0")
    m.add(m.replica_in_flight, "llama", "llama-0", amount=-1)
    m.add(m.in_flight, "llama")
    await asyncio.sleep(0)
    assert sample(m, "gateway_replica_in_flight_requests", model="llama", replica="llama-0") == 0
    assert sample(m, "gateway_in_flight_requests", model="llama") == 1


async def test_the_exposition_never_lags() -> None:
    m = GatewayMetrics()
    m.add(m.in_flight, "llama")
    assert b'gateway_in_flight_requests{model="llama"} 1.0' in m.exposition()


async def test_a_forgotten_replica_is_not_revived_by_a_late_move() -> None:
    m = GatewayMetrics()
    m.add(m.replica_in_flight, "llama", "llama-0")
    await asyncio.sleep(0)
    m.add(m.replica_in_flight, "llama", "llama-0", amount=-1)
    m.forget_replica("llama", "llama-0")
    await asyncio.sleep(0)
    assert sample(m, "gateway_replica_in_flight_requests", model="llama", replica="llama-0") is None


def test_without_a_loop_a_move_lands_at_once() -> None:
    m = GatewayMetrics()
    m.add(m.requests, "llama", "", "chat", "4xx")
    assert sample(m, "inference_requests_total", model="llama", adapter="", endpoint="chat",
                  status="4xx") == 1  # fmt: skip
