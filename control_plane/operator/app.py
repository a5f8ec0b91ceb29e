"""Wiring: settings -> clients -> handlers (model, LoRA, tenant, autoscaler) -> `kopf.operator()`,
plus `/metrics` and `/healthz`.

Several replicas may run: they meet in the `KopfPeering` named `settings.peering_name`
(one per served namespace; `ClusterKopfPeering` when serving the whole cluster) and only
the one with the highest priority handles resources; the others wait, and take over when
it goes away. Without a peering object (or with `standalone`), every replica works alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control_plane.api.constants import FINALIZER
from control_plane.autoscaler import handlers as autoscaler_handlers
from control_plane.autoscaler.wiring import AutoscalerConfig, build_kube_autoscaler
from control_plane.kube import KubeClient
from control_plane.lora_manager import handlers as lora_handlers
from control_plane.lora_manager.cycle import AdapterCycle
from control_plane.lora_manager.sidecar_client import SidecarClient
from control_plane.lora_manager.status import RetryPolicy
from control_plane.model_manager import handlers as model_handlers
from control_plane.model_manager.resources import PodConfig
from control_plane.operator.context import OperatorContext
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.settings import OperatorSettings
from control_plane.tenant_manager import handlers as tenant_handlers

log = logging.getLogger(__name__)


def pod_config(settings: OperatorSettings) -> PodConfig:
    return PodConfig(
        engine_image=settings.engine_image,
        sim_image=settings.sim_image,
        sidecar_image=settings.sidecar_image,
        image_pull_policy=settings.image_pull_policy,
        drain_seconds=settings.drain_seconds,
        engine_startup_seconds=settings.engine_startup_seconds,
        adapter_volume_size=settings.adapter_volume_size,
        service_account=settings.inference_service_account,
        log_level=settings.log_level,
        sidecar_env=settings.sidecar_source_env(),
        native_sidecar=settings.native_sidecar,
    )


def build_context(
    settings: OperatorSettings,
    session: aiohttp.ClientSession,
    kube: KubeClient,
    registry: CollectorRegistry,
) -> OperatorContext:
    metrics = OperatorMetrics(registry)
    cycle = AdapterCycle(
        SidecarClient(session, timeout_seconds=settings.sidecar_timeout_seconds),
        policy=RetryPolicy(
            max_failures=settings.max_load_failures,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_cap_seconds=settings.backoff_cap_seconds,
        ),
        metrics=metrics,
        poll_seconds=settings.adapter_resync_seconds,
    )
    return OperatorContext(
        settings=settings,
        kube=kube,
        cycle=cycle,
        metrics=metrics,
        pods=pod_config(settings),
    )


def build_registry(
    ctx: OperatorContext,
    connection: kopf.ConnectionInfo,
    *,
    session: aiohttp.ClientSession,
    metrics_registry: CollectorRegistry,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection

    model_handlers.register(registry, ctx)
    lora_handlers.register(registry, ctx)
    lora_handlers.register_sweep(registry, ctx)
    tenant_handlers.register(registry, ctx)
    settings = ctx.settings
    if settings.autoscaler_enabled:
        config = AutoscalerConfig(
            interval_seconds=settings.autoscaler_interval_seconds,
            gateway_namespace=settings.gateway_namespace
            or (settings.namespaces[0] if settings.namespaces else "hoist"),
            gateway_selector=settings.gateway_selector,
            gateway_headers=settings.gateway_metrics_headers(),
        )
        autoscaler = build_kube_autoscaler(ctx.kube, session, metrics_registry, config)
        autoscaler_handlers.register(registry, autoscaler, interval_seconds=config.interval_seconds)
    return registry


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    out = kopf.OperatorSettings()
    out.peering.name = settings.peering_name
    out.peering.priority = settings.peering_priority
    out.peering.standalone = settings.standalone
    out.peering.clusterwide = not settings.namespaces
    # Auto-detect: meet the other replicas when the peering resource is installed, else
    # run alone (and say so in the log) rather than pause.
    out.peering.mandatory = settings.peering_mandatory
    out.posting.level = logging.WARNING
    # LoraAdapters are held until unloaded everywhere under Hoist's own finalizer name.
    out.persistence.finalizer = FINALIZER
    # A resource being deleted waits for its timer to finish its pass: check every second
    # (kopf's default is a minute) so the finalizer is released promptly.
    out.background.cancellation_polling = 1.0
    return out


@contextlib.asynccontextmanager
async def metrics_server(
    settings: OperatorSettings, registry: CollectorRegistry
) -> AsyncIterator[int]:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        yield port
    finally:
        await runner.cleanup()


def default_connection() -> kopf.ConnectionInfo:
    """In-cluster service account, else the kubeconfig (`KUBECONFIG` or ~/.kube/config)."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account and no kubeconfig to log in with")
    return info


async def run(
    settings: OperatorSettings,
    *,
    connection: kopf.ConnectionInfo,
    metrics_registry: CollectorRegistry | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run the operator until `stop_flag` is set (or the task is cancelled)."""
    registry = metrics_registry or CollectorRegistry()
    kube = KubeClient.connect(connection)
    try:
        async with aiohttp.ClientSession() as session, metrics_server(settings, registry) as port:
            log.info("metrics on %s:%d", settings.metrics_host, port)
            ctx = build_context(settings, session, kube, registry)
            await kopf.operator(
                registry=build_registry(
                    ctx, connection, session=session, metrics_registry=registry
                ),
                settings=kopf_settings(settings),
                clusterwide=not settings.namespaces,
                namespaces=settings.namespaces,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
    finally:
        await kube.aclose()
