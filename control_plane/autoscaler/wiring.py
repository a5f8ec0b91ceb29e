"""Building the Kubernetes autoscaler at the operator's start-up, in one call.

config = AutoscalerConfig()
autoscaler = build_kube_autoscaler(ctx.kube, session, metrics_registry, config)
handlers.register(kopf_registry, autoscaler, interval_seconds=config.interval_seconds)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from prometheus_client import CollectorRegistry

from control_plane.api.constants import GATEWAY_PORT
from control_plane.autoscaler.actuator import KubeApi, KubeAutoscaler, pods_ref, read_pod
from control_plane.autoscaler.decider import Decider
from control_plane.autoscaler.metrics import AutoscalerMetrics
from control_plane.autoscaler.scrape import EngineScraper, GatewayDemandReader, GatewayUrls
from control_plane.kube import KubeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoscalerConfig:
    interval_seconds: float = 2.0
    """How often each Model with autoscaling enabled is evaluated."""
    scrape_timeout_seconds: float = 2.0
    """Longest wait for one engine's or gateway's `/metrics`."""
    metrics_max_age_seconds: float = 30.0
    """Signals older than this count as missing."""
    gateway_namespace: str = "hoist"
    gateway_selector: str = "app.kubernetes.io/name=hoist-gateway"
    """Label selector of the gateway's pods; each ready one's `/metrics` is read."""
    gateway_port: int = GATEWAY_PORT
    gateway_headers: tuple[tuple[str, str], ...] = ()
    """Sent with each gateway scrape: the credential its `/metrics` asks for, if any."""


def gateway_pod_urls(kube: KubeApi, namespace: str, selector: str, port: int) -> GatewayUrls:
    """The `/metrics` of every ready gateway pod; none when they cannot be listed."""

    async def urls() -> list[str]:
        try:
            pods = await kube.list(pods_ref(namespace), label_selector=selector)
        except KubeError as exc:
            # The demand is then missing for this tick, which the algorithm handles.
            log.warning("cannot list gateway pods in %s (%s): %s", namespace, selector, exc)
            return []
        out = []
        for obj in pods:
            pod = read_pod(obj, lambda _name, ip: f"http://{ip}:{port}/metrics")
            if pod is not None and pod.ready and pod.metrics_url:
                out.append(pod.metrics_url)
        return out

    return urls


def build_kube_autoscaler(
    kube: KubeApi,
    session: aiohttp.ClientSession,
    registry: CollectorRegistry,
    config: AutoscalerConfig,
) -> KubeAutoscaler:
    gateways = gateway_pod_urls(
        kube, config.gateway_namespace, config.gateway_selector, config.gateway_port
    )
    decider = Decider(
        EngineScraper(session, timeout_s=config.scrape_timeout_seconds),
        GatewayDemandReader(
            session,
            gateways,
            timeout_s=config.scrape_timeout_seconds,
            headers=dict(config.gateway_headers),
        ),
        AutoscalerMetrics(registry),
        metrics_max_age_seconds=config.metrics_max_age_seconds,
    )
    return KubeAutoscaler(kube, decider)
