"""GPU utilization from NVML, only where a GPU and its driver exist (absent, never faked)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


def _nvml() -> Any | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver or no device: NVML raises its own types
        return None
    return pynvml


class GpuCollector(Collector):
    """`gpu_utilization{gpu}` in 0..1, read at scrape time; nothing where NVML is missing."""

    def __init__(self) -> None:
        self._nvml = _nvml()

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._nvml is None:
            return
        nvml = self._nvml
        family = GaugeMetricFamily(
            "gpu_utilization", "Share of time a GPU was busy (NVML), 0..1", labels=["gpu"]
        )
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                family.add_metric([str(index)], float(rates.gpu) / 100.0)
        except Exception as exc:  # noqa: BLE001 - a failing read is logged, not fatal
            log.warning("NVML read failed: %s", exc)
            return
        yield family
