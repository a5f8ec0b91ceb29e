"""The Kubernetes actuator against kmock's API emulator and real metrics servers on loopback.

Engines and the gateway are small aiohttp apps serving Prometheus text on ephemeral ports;
the Deployment and pods live in the API emulator (tests.support.kube_emulator), reached
through the operator's own `KubeClient`. Each test drives `KubeAutoscaler.tick` and
checks what reached the API and the metrics registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import kopf
import pytest
from prometheus_client import CollectorRegistry

from control_plane.api.constants import LABEL_MODEL
from control_plane.api.model import ModelSpec
from control_plane.autoscaler.actuator import KubeAutoscaler, deployment_ref
from control_plane.autoscaler.algorithm import Reason
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader
from control_plane.kube import KubeClient, apps_ref, core_ref
from tests.support.kube_emulator import running_emulator
from tests.support.kubelet import create_with_status
from tests.support.metrics_server import MetricsServer, metrics_server
from tests.support.metrics_server import engine_text as support_engine_text
from tests.support.metrics_server import gateway_text as support_gateway_text

NS = "default"
MODEL = "chat"


@pytest.fixture
async def servers() -> AsyncIterator[MetricsServer]:
    async with metrics_server() as ms:
        yield ms


def engine_text(running: float, waiting: float = 0) -> str:
    return support_engine_text(MODEL, running, waiting)


def gateway_text(in_flight: int, held: int) -> str:
    return support_gateway_text(MODEL, in_flight, held)


@dataclass
class Cluster:
    kube: KubeClient
    autoscaler: KubeAutoscaler
    registry: CollectorRegistry

    async def add_deployment(self, replicas: int) -> None:
        await self.kube.create(
            apps_ref(NS, "deployments"),
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": MODEL, "namespace": NS},
                "spec": {"replicas": replicas},
            },
        )

    async def add_pod(self, name: str, *, ready: bool) -> None:
        await create_with_status(
            self.kube,
            core_ref(NS, "pods"),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {LABEL_MODEL: MODEL}},
                "status": {
                    "phase": "Running" if ready else "Pending",
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                },
            },
        )

    async def replicas(self) -> int:
        dep = await self.kube.get(deployment_ref(NS, MODEL))
        assert dep is not None
        return int(dep["spec"]["replicas"])

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"namespace": NS, "model": MODEL, **labels})


@pytest.fixture
async def cluster(servers: MetricsServer) -> AsyncIterator[Cluster]:
    clock = [1_000.0]
    async with (
        running_emulator() as (_, url),
        aiohttp.ClientSession() as session,
        KubeClient.connect(kopf.ConnectionInfo(server=url, token="test")) as kube,
    ):
        registry = CollectorRegistry()

        async def gateway_urls() -> list[str]:
            return [servers.url("gateway")]

        def engine_url(name: str, _ip: str) -> str:
            return servers.url(name)

        decider = Decider(
            EngineScraper(session, timeout_s=2),
            GatewayDemandReader(session, gateway_urls, timeout_s=2, reuse_for_s=0),
            AutoscalerMetrics(registry),
            clock=lambda: clock[0],
        )
        autoscaler = KubeAutoscaler(kube, decider, engine_url=engine_url)
        yield Cluster(kube, autoscaler, registry)


def spec(**autoscaling: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "source": "m",
            "replicas": 1,
            "minReplicas": 0,
            "maxReplicas": 8,
            "autoscaling": {
                "enabled": True,
                "targetConcurrency": 4,
                "scaleToZeroAfterSeconds": 60,
                **autoscaling,
            },
        }
    )


async def test_busy_engines_scale_the_deployment_up(
    cluster: Cluster, servers: MetricsServer
) -> None:
    await cluster.add_deployment(2)
    for name in ("p1", "p2"):
        await cluster.add_pod(name, ready=True)
        servers.texts[name] = engine_text(running=6, waiting=4)
    servers.texts["gateway"] = gateway_text(in_flight=20, held=0)

    rec = await cluster.autoscaler.tick(NS, MODEL, spec())

    assert rec is not None
    assert (rec.desired_replicas, rec.reason) == (5, Reason.PANIC)
    assert await cluster.replicas() == 5
    assert cluster.metric("autoscaler_desired_replicas") == 5
    assert cluster.metric("autoscaler_actual_replicas") == 2
    assert cluster.metric("autoscaler_scaling_decisions_total", reason="PanicScaleUp") == 1
    assert cluster.metric("autoscaler_scale_changes_total", direction="up") == 1


async def test_a_held_request_scales_a_model_up_from_zero(
    cluster: Cluster, servers: MetricsServer
) -> None:
    await cluster.add_deployment(0)
    servers.texts["gateway"] = gateway_text(in_flight=0, held=1)

    rec = await cluster.autoscaler.tick(NS, MODEL, spec())

    assert rec is not None
    assert (rec.desired_replicas, rec.reason) == (1, Reason.SCALE_FROM_ZERO)
    assert await cluster.replicas() == 1


async def test_unreadable_metrics_leave_the_count_alone(
    cluster: Cluster, servers: MetricsServer
) -> None:
    """Engines answer 503, the gateway is down: no fresh signal, so no change at all."""
    await cluster.add_deployment(3)
    for name in ("p1", "p2", "p3"):
        await cluster.add_pod(name, ready=True)

    rec = await cluster.autoscaler.tick(NS, MODEL, spec(scaleToZeroAfterSeconds=0))

    assert rec is not None
    assert (rec.desired_replicas, rec.reason) == (3, Reason.METRICS_UNAVAILABLE)
    assert await cluster.replicas() == 3
    assert cluster.metric("autoscaler_observed_concurrency") != cluster.metric(
        "autoscaler_observed_concurrency"
    ), "NaN: no fresh signal"
    assert (
        cluster.registry.get_sample_value("autoscaler_scrape_failures_total", {"source": "engine"})
        or 0
    ) >= 3


async def test_a_loading_pod_is_never_scaled_away(cluster: Cluster, servers: MetricsServer) -> None:
    await cluster.add_deployment(2)
    await cluster.add_pod("p1", ready=True)
    await cluster.add_pod("p2", ready=False)
    servers.texts["p1"] = engine_text(running=0)
    servers.texts["gateway"] = gateway_text(in_flight=0, held=0)

    rec = await cluster.autoscaler.tick(
        NS, MODEL, spec(scaleToZeroAfterSeconds=0, scaleDownDelaySeconds=0)
    )

    assert rec is not None
    assert (rec.desired_replicas, rec.reason) == (2, Reason.LOADING)
    assert await cluster.replicas() == 2


async def test_no_deployment_yet_is_not_an_error(cluster: Cluster) -> None:
    assert await cluster.autoscaler.tick(NS, MODEL, spec()) is None
