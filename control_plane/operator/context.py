"""What every manager's handlers share, built once at start-up and passed to its `register`.

It knows no manager: each manager's own state (the LoRA manager's `AdapterCycle`, the
model manager's `PodConfig`) is built by that manager's `wiring` and passed beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from control_plane.kube import KubeClient
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.settings import OperatorSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    metrics: OperatorMetrics
    now: Callable[[], datetime] = utcnow
    """The clock of the statuses' timestamps."""
