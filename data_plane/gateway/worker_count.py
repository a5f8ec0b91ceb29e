"""How many gateway worker processes to run when `workers` is not set.

One per core the process may use: the CPUs it may be scheduled on (`sched_getaffinity`),
bounded by its cgroup's CPU quota where one is set (a Kubernetes CPU limit becomes the
container's cgroup quota: `limits.cpu: "2"` is `200000 100000` in cgroup v2's `cpu.max`,
or `cpu.cfs_quota_us` 200000 over `cpu.cfs_period_us` 100000 in cgroup v1). A fractional
quota rounds up (1.5 cores: 2 workers): the quota is shared by the workers anyway, and a
worker waiting for its turn costs little.

And one exception: per-process quota counters. Tenants that declare quotas are counted by
each process unless a shared store (`tenant_redis_url`) holds the counters, so N workers
would grant N times the quota. Then one worker is started, and the log says why.

The parsing is pure (`cgroup_cores`, `choose`); `available_cores` reads the files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def quota_cores(quota: str, period: str) -> int | None:
    """Whole cores allowed by a CFS quota over its period (text as the kernel writes it);
    None: no quota ("max", -1) or text that is not a quota."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def cgroup_cores(root: Path) -> int | None:
    """The CPU quota of the cgroup mounted at `root`, in whole cores; None: unlimited."""
    v2 = root / "cpu.max"
    if v2.is_file():
        fields = v2.read_text(encoding="ascii").split()
        return quota_cores(fields[0], fields[1]) if len(fields) == 2 else None
    for name in _V1_DIRS:
        quota, period = root / name / "cpu.cfs_quota_us", root / name / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            return quota_cores(quota.read_text("ascii").strip(), period.read_text("ascii").strip())
    return None


def available_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """Cores this process may use: its CPU affinity, within its cgroup's quota."""
    cores = len(os.sched_getaffinity(0)) or 1
    try:
        limit = cgroup_cores(cgroup_root)
    except OSError:
        limit = None
    return min(cores, limit) if limit is not None else cores


class _Quotas(Protocol):
    @property
    def requests_per_minute(self) -> int | None: ...
    @property
    def tokens_per_minute(self) -> int | None: ...
    @property
    def concurrent_requests(self) -> int | None: ...


def declares_quota(tenants: Iterable[_Quotas]) -> bool:
    """Whether any tenant has a quota that a process counts (requests, tokens, concurrency)."""
    return any(
        t.requests_per_minute is not None
        or t.tokens_per_minute is not None
        or t.concurrent_requests is not None
        for t in tenants
    )


@dataclass(frozen=True)
class WorkerChoice:
    workers: int
    reason: str
    """Why, in words, for the start-up log."""


def choose(
    configured: int | None, cores: int, *, quotas_declared: bool, shared_quota_store: bool
) -> WorkerChoice:
    """The worker count: `configured` when set, else one per core, but one while declared
    quotas would be counted per process."""
    if configured is not None:
        return WorkerChoice(configured, "set by workers")
    if quotas_declared and not shared_quota_store and cores > 1:
        return WorkerChoice(
            1,
            f"one worker, not {cores}: tenants declare quotas and no tenant_redis_url holds "
            "their counters, so each worker would grant the whole quota; set "
            "tenant_redis_url (or workers) to run one per core",
        )
    return WorkerChoice(cores, f"one per available core ({cores})")
