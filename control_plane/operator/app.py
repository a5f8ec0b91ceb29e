"""Wiring: settings -> clients -> handlers (model, LoRA, tenant, autoscaler) -> `kopf.operator()`,
plus `/metrics` and `/healthz`.

Several replicas may run: they meet in the `KopfPeering` named `settings.peering_name`
(one per served namespace; `ClusterKopfPeering` when serving the whole cluster) and only
the one with the highest priority handles resources; the others wait, and take over when
it goes away. Without a peering object (or with `standalone`), every replica works alone.
The periodic work (`walk.PeriodicWalk`, over kopf indexes) follows the same rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import kopf
from aiohttp import web
from opentelemetry.trace import Tracer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control_plane.api.constants import FINALIZER
from control_plane.autoscaler import handlers as autoscaler_handlers
from control_plane.autoscaler.wiring import AutoscalerConfig, build_kube_autoscaler
from control_plane.kube import KubeClient
from control_plane.lora_manager import handlers as lora_handlers
from control_plane.lora_manager.wiring import adapter_cycle
from control_plane.model_manager import handlers as model_handlers
from control_plane.model_manager.wiring import pod_config
from control_plane.operator import indexed
from control_plane.operator.context import OperatorContext
from control_plane.operator.jobs import Passes, operator_jobs
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.settings import OperatorSettings
from control_plane.operator.walk import PeeringGate, PeriodicWalk, WalkMetrics
from control_plane.telemetry import start_tracing, stop_tracing
from control_plane.tenant_manager import handlers as tenant_handlers

log = logging.getLogger(__name__)


def build_context(
    settings: OperatorSettings, kube: KubeClient, registry: CollectorRegistry
) -> OperatorContext:
    return OperatorContext(settings=settings, kube=kube, metrics=OperatorMetrics(registry))


def build_registry(
    ctx: OperatorContext,
    connection: kopf.ConnectionInfo,
    *,
    session: aiohttp.ClientSession,
    metrics_registry: CollectorRegistry,
    walk: PeriodicWalk,
    tracer: Tracer | None = None,
) -> kopf.OperatorRegistry:
    """The handlers of every manager, and the indexes `walk` goes over periodically."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection

    settings = ctx.settings
    autoscale = None
    if settings.autoscaler_enabled:
        config = AutoscalerConfig(
            interval_seconds=settings.autoscaler_interval_seconds,
            gateway_namespace=settings.gateway_namespace
            or (settings.namespaces[0] if settings.namespaces else "hoist"),
            gateway_selector=settings.gateway_selector,
            gateway_headers=settings.gateway_metrics_headers(),
        )
        autoscaler = build_kube_autoscaler(ctx.kube, session, metrics_registry, config)
        autoscaler_handlers.register(registry, autoscaler)
        autoscale = autoscaler_handlers.autoscale_pass(autoscaler)
    cycle = adapter_cycle(settings, session, ctx.kube, ctx.metrics, now=ctx.now, tracer=tracer)
    passes = Passes(
        model=model_handlers.register(registry, ctx, pod_config(settings)),
        adapter=lora_handlers.register(registry, ctx, cycle),
        sweep=lora_handlers.sweep_pass(ctx, cycle),
        recheck_tenants=tenant_handlers.register(registry, ctx),
        autoscale=autoscale,
    )
    indexed.register(registry, lambda found: operator_jobs(settings, ctx.kube, found, passes), walk)
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
    # LoraAdapters (the only kind with a finalizer: their delete handler unloads them) are
    # held under Hoist's own finalizer name. No kopf timer or daemon: kopf would put the
    # finalizer on every resource one matches (the periodic work is `walk.PeriodicWalk`).
    out.persistence.finalizer = FINALIZER
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


def own_identity() -> str:
    """This replica's name in the peering (kopf's own choice when none is given: the pod's
    name from `POD_ID`, else user@host with a start time); the walk's gate needs to know it."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{secrets.token_hex(2)}"


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
    identity = own_identity()
    tracing = start_tracing("hoist-operator")  # OTEL_* variables; None: off
    tracer = tracing.get_tracer("hoist.operator") if tracing is not None else None
    kube = KubeClient.connect(connection)
    try:
        async with aiohttp.ClientSession() as session, metrics_server(settings, registry) as port:
            log.info("metrics on %s:%d", settings.metrics_host, port)
            ctx = build_context(settings, kube, registry)
            walk = PeriodicWalk(PeeringGate(ctx.kube, settings, identity), WalkMetrics(registry))
            try:
                await kopf.operator(
                    registry=build_registry(
                        ctx,
                        connection,
                        session=session,
                        metrics_registry=registry,
                        walk=walk,
                        tracer=tracer,
                    ),
                    settings=kopf_settings(settings),
                    clusterwide=not settings.namespaces,
                    namespaces=settings.namespaces,
                    # kopf's `Identity`: a str NewType it keeps private
                    identity=cast(Any, identity),
                    stop_flag=stop_flag,
                    ready_flag=ready_flag,
                )
            finally:
                await walk.stop()
    finally:
        await kube.aclose()
        await asyncio.to_thread(stop_tracing, tracing)  # export the last spans
