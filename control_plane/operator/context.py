"""What the handlers share, built once at start-up and passed to each manager's `register`."""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.kube import KubeClient
from control_plane.lora_manager.cycle import AdapterCycle
from control_plane.model_manager.resources import PodConfig
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.settings import OperatorSettings


@dataclass(frozen=True)
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    cycle: AdapterCycle
    metrics: OperatorMetrics
    pods: PodConfig
