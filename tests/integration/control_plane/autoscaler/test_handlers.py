"""The autoscaler's periodic pass: `kopf.operator` with the autoscaler's handlers and the
operator's walk (kopf indexes + `PeriodicWalk`, only the `autoscale` job), against the API
emulator.

Engines and gateway pods serve their metrics from a loopback server; the operator runs in
the test's own task and is stopped by it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf
import pytest
from prometheus_client import CollectorRegistry

from control_plane.api.constants import LABEL_MODEL, MODEL_PLURAL
from control_plane.autoscaler import handlers
from control_plane.autoscaler.actuator import KubeAutoscaler, deployment_ref
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader
from control_plane.autoscaler.wiring import gateway_pod_urls
from control_plane.kube import KubeClient, apps_ref, core_ref, hoist_ref
from control_plane.operator import indexed
from control_plane.operator.indexed import Indexed
from control_plane.operator.jobs import autoscale_job
from control_plane.operator.settings import OperatorSettings
from control_plane.operator.walk import Job, PeeringGate, PeriodicWalk, WalkMetrics
from tests.support.kube_emulator import running_emulator
from tests.support.kubelet import create_with_status
from tests.support.metrics_server import MetricsServer, engine_text, metrics_server
from tests.support.operator_harness import eventually

NS = "default"
GATEWAY_LABEL = "app.kubernetes.io/name=hoist-gateway"


def pod(name: str, labels: dict[str, str], *, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def model(name: str, *, enabled: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "source": "m",
            "engine": "sim",
            "replicas": 1,
            "minReplicas": 1,
            "maxReplicas": 6,
            "autoscaling": {"enabled": enabled, "targetConcurrency": 2},
        },
    }


@dataclass
class Env:
    kube: KubeClient
    server: MetricsServer
    metrics: CollectorRegistry
    registry: kopf.OperatorRegistry

    @contextlib.asynccontextmanager
    async def operator(self) -> AsyncIterator[None]:
        """kopf running in a task of the test itself (kopf cancels tasks younger than it on
        exit, so it is started and stopped from the test's own task, not a fixture's)."""
        settings = kopf.OperatorSettings()
        settings.peering.standalone = True
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            kopf.operator(
                registry=self.registry,
                settings=settings,
                clusterwide=True,
                stop_flag=stop,
                ready_flag=ready,
            )
        )
        try:
            await asyncio.wait_for(asyncio.shield(ready.wait()), timeout=10)
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=10)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with (
        running_emulator() as (_, url),
        metrics_server() as server,
        aiohttp.ClientSession() as session,
    ):
        connection = kopf.ConnectionInfo(server=url, token="test")
        async with KubeClient.connect(connection) as kube:
            metrics = CollectorRegistry()
            # Gateway pods are found by label; every pod's metrics come from the loopback server.
            gateways = gateway_pod_urls(kube, NS, GATEWAY_LABEL, 0)
            decider = Decider(
                EngineScraper(session, timeout_s=2),
                GatewayDemandReader(
                    session, lambda: _redirect(gateways, server), timeout_s=2, reuse_for_s=0
                ),
                AutoscalerMetrics(metrics),
            )
            autoscaler = KubeAutoscaler(
                kube, decider, engine_url=lambda name, _ip: server.url(name)
            )
            registry = kopf.OperatorRegistry()

            @kopf.on.login(registry=registry)
            def login(**_: Any) -> kopf.ConnectionInfo:
                return connection

            handlers.register(registry, autoscaler)
            gate = PeeringGate(kube, OperatorSettings(standalone=True), identity="test")
            walk = PeriodicWalk(gate, WalkMetrics(metrics))

            def jobs(found: Indexed) -> list[Job]:
                tick = handlers.autoscale_pass(autoscaler)
                return [autoscale_job(kube, found, tick, interval_seconds=0.2, concurrency=4)]

            indexed.register(registry, jobs, walk)
            try:
                yield Env(kube, server, metrics, registry)
            finally:
                await walk.stop()


async def _redirect(urls: Callable[[], Awaitable[list[str]]], server: MetricsServer) -> list[str]:
    """Gateway pods as listed by label, each answered by the loopback server under its name."""
    found = await urls()
    return [server.url(f"gw-{i}") for i in range(len(found))]


async def test_the_walk_scales_a_busy_model_and_records_why(env: Env) -> None:
    kube, server, metrics = env.kube, env.server, env.metrics
    server.texts["chat-a"] = engine_text("chat", running=5, waiting=3)
    server.texts["gw-0"] = (
        'gateway_in_flight_requests{model="chat"} 8\ngateway_queued_requests{model="chat",reason="cold_start"} 0\n'
    )
    await create_with_status(
        kube, core_ref(NS, "pods"), pod("gw", {"app.kubernetes.io/name": "hoist-gateway"})
    )
    await kube.create(
        apps_ref(NS, "deployments"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "chat", "namespace": NS},
            "spec": {"replicas": 1},
        },
    )
    await create_with_status(kube, core_ref(NS, "pods"), pod("chat-a", {LABEL_MODEL: "chat"}))
    await kube.create(hoist_ref(NS, MODEL_PLURAL), model("chat"))

    async def scaled() -> bool:
        dep = await kube.get(deployment_ref(NS, "chat"))
        return dep is not None and dep["spec"]["replicas"] == 4

    async def recorded() -> bool:
        doc = await kube.get(hoist_ref(NS, MODEL_PLURAL, "chat"))
        status = (doc or {}).get("status") or {}
        return status.get("desiredReplicas") == 4 and status.get("scalingReason") is not None

    async with env.operator():
        await eventually(scaled, what="the Deployment scaled to 4")
        await eventually(recorded, what="status.desiredReplicas 4")
    labels = {"namespace": NS, "model": "chat"}
    assert metrics.get_sample_value("autoscaler_desired_replicas", labels) == 4
    assert metrics.get_sample_value("autoscaler_actual_replicas", labels) == 1


async def test_models_without_autoscaling_are_not_touched(env: Env) -> None:
    kube, server, metrics = env.kube, env.server, env.metrics
    server.texts["code-a"] = engine_text("code", running=50)
    await kube.create(
        apps_ref(NS, "deployments"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "code", "namespace": NS},
            "spec": {"replicas": 1},
        },
    )
    await create_with_status(kube, core_ref(NS, "pods"), pod("code-a", {LABEL_MODEL: "code"}))
    await kube.create(hoist_ref(NS, MODEL_PLURAL), model("code", enabled=False))
    # A model with autoscaling on, created after: once it is handled, "code" had its chances.
    server.texts["chat-a"] = engine_text("chat", running=0)
    await kube.create(hoist_ref(NS, MODEL_PLURAL), model("chat"))
    await kube.create(
        apps_ref(NS, "deployments"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "chat", "namespace": NS},
            "spec": {"replicas": 1},
        },
    )

    async def chat_decided() -> bool:
        labels = {"namespace": NS, "model": "chat"}
        return (metrics.get_sample_value("autoscaler_desired_replicas", labels) or 0) >= 1

    async with env.operator():
        await eventually(chat_decided, what="a decision for chat")
        await asyncio.sleep(0.5)  # several more intervals
    dep = await kube.get(deployment_ref(NS, "code"))
    assert dep is not None
    assert dep["spec"]["replicas"] == 1
    assert (
        metrics.get_sample_value("autoscaler_desired_replicas", {"namespace": NS, "model": "code"})
        is None
    )
