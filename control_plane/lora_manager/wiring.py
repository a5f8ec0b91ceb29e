"""The LoRA manager's own state, built once at start-up: its `AdapterCycle`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp
from opentelemetry.trace import Tracer

from control_plane.kube import KubeClient
from control_plane.lora_manager.credentials import SecretCredentials
from control_plane.lora_manager.cycle import AdapterCycle
from control_plane.lora_manager.sidecar_client import SidecarClient
from control_plane.lora_manager.status import RetryPolicy
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.settings import OperatorSettings


def adapter_cycle(
    settings: OperatorSettings,
    session: aiohttp.ClientSession,
    kube: KubeClient,
    metrics: OperatorMetrics,
    *,
    now: Callable[[], datetime],
    tracer: Tracer | None = None,
) -> AdapterCycle:
    """The cycle over the sidecars (one client on the shared session), reading adapters'
    credentials from their Secrets."""
    return AdapterCycle(
        SidecarClient(session, timeout_seconds=settings.sidecar_timeout_seconds, tracer=tracer),
        policy=RetryPolicy(
            max_failures=settings.max_load_failures,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_cap_seconds=settings.backoff_cap_seconds,
        ),
        metrics=metrics,
        now=now,
        poll_seconds=settings.adapter_resync_seconds,
        credentials=SecretCredentials(kube),
    )
