"""The model manager's own state, built once at start-up from the operator's settings."""

from __future__ import annotations

import os

from control_plane.api.tracing import otel_environment
from control_plane.model_manager.resources import PodConfig
from control_plane.operator.settings import OperatorSettings


def pod_config(settings: OperatorSettings) -> PodConfig:
    """What every Model's pods get from the operator: images, volumes, env, drain time."""
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
        otel_env=tuple(sorted(otel_environment(os.environ).items())),
        native_sidecar=settings.native_sidecar,
    )
