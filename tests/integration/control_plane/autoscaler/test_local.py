"""The embedded default's autoscaler: an in-memory fleet, real engine metrics over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from control_plane.api.model import ModelSpec
from control_plane.autoscaler.algorithm import Reason
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.local import LocalAutoscaler, LocalModel, LocalReplica
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader
from tests.support.metrics_server import (
    MetricsServer,
    engine_text,
    gateway_text,
    metrics_server,
)

MODEL = "chat"


@dataclass
class Fleet:
    """What a supervisor would report and do; records every `scale` call."""

    server: MetricsServer
    model: LocalModel
    calls: list[tuple[str, int, str]] = field(default_factory=list)
    scaled: asyncio.Event = field(default_factory=asyncio.Event)

    async def models(self) -> Sequence[LocalModel]:
        return [self.model]

    async def scale(self, namespace: str, name: str, replicas: int, *, reason: str) -> None:
        self.calls.append((name, replicas, reason))
        self.scaled.set()
        self.model = replace(self.model, current=replicas)


def spec(enabled: bool = True) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "source": "m",
            "engine": "sim",
            "replicas": 1,
            "minReplicas": 0,
            "maxReplicas": 6,
            "autoscaling": {"enabled": enabled, "targetConcurrency": 2},
        }
    )


@pytest.fixture
async def parts() -> AsyncIterator[tuple[MetricsServer, Decider]]:
    async with metrics_server() as server, aiohttp.ClientSession() as session:

        async def gateways() -> list[str]:
            return [server.url("gateway")]

        decider = Decider(
            EngineScraper(session, timeout_s=2),
            GatewayDemandReader(session, gateways, timeout_s=2, reuse_for_s=0),
            AutoscalerMetrics(CollectorRegistry()),
        )
        yield server, decider


def replica(server: MetricsServer, name: str, phase: str) -> LocalReplica:
    return LocalReplica(name, server.url(name).removesuffix("/metrics"), phase)


async def test_busy_local_engines_get_more_processes(
    parts: tuple[MetricsServer, Decider],
) -> None:
    server, decider = parts
    server.texts["chat-0"] = engine_text(MODEL, running=6, waiting=2)
    server.texts["gateway"] = gateway_text(MODEL, in_flight=8, held=0)
    fleet = Fleet(
        server, LocalModel("default", MODEL, spec(), 1, [replica(server, "chat-0", "Ready")])
    )

    recs = await LocalAutoscaler(fleet, decider).tick()

    assert recs[MODEL].reason is Reason.PANIC
    assert fleet.calls == [(MODEL, 4, "PanicScaleUp")]


async def test_a_starting_process_is_never_stopped(parts: tuple[MetricsServer, Decider]) -> None:
    server, decider = parts
    server.texts["chat-0"] = engine_text(MODEL, running=0)
    server.texts["gateway"] = gateway_text(MODEL, in_flight=0, held=0)
    replicas = [replica(server, "chat-0", "Ready"), replica(server, "chat-1", "Starting")]
    fleet = Fleet(server, LocalModel("default", MODEL, spec(), 2, replicas))

    recs = await LocalAutoscaler(fleet, decider).tick()

    assert recs[MODEL].reason is Reason.LOADING
    assert fleet.calls == []


async def test_run_wakes_a_model_at_zero_and_stops_when_asked(
    parts: tuple[MetricsServer, Decider],
) -> None:
    server, decider = parts
    server.texts["gateway"] = gateway_text(MODEL, in_flight=0, held=2)
    fleet = Fleet(server, LocalModel("default", MODEL, spec(), 0, []))
    stop = asyncio.Event()
    task = asyncio.create_task(LocalAutoscaler(fleet, decider).run(stop, interval_seconds=0.05))
    try:
        await asyncio.wait_for(fleet.scaled.wait(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert fleet.calls[0] == (MODEL, 1, "ScaleFromZero")


async def test_models_without_autoscaling_are_left_alone(
    parts: tuple[MetricsServer, Decider],
) -> None:
    server, decider = parts
    server.texts["gateway"] = gateway_text(MODEL, in_flight=0, held=5)
    fleet = Fleet(server, LocalModel("default", MODEL, spec(enabled=False), 0, []))

    assert await LocalAutoscaler(fleet, decider).tick() == {}
    assert fleet.calls == []
