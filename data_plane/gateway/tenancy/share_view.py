"""What the other gateway processes have in flight, and how it merges with ours (pure).

Each gateway process publishes, every `tenant_share_sync_interval_s`, one report: per
model, the tenants it saw recently with their weight, requests in flight and average use
(`shares.Shares`), and its requests in flight per replica. Each reads the others' reports
and sums them into a `PeerView` per model, which `Shares.allowance` and the per-replica
cap (`fleet.Replica.cap_left`) add to the process's own live counts. The I/O (Redis, the
loop) is `shared_shares.py`; this module only encodes, decodes and adds.

Reports are JSON, small and versioned:

    {"v": 1, "models": {"llama": {"t": {"acme": [weight, in_flight, usage]},
                                  "r": {"replica-0": in_flight}}}}

A report that does not parse is skipped (a newer or broken peer must not stop the
others from sharing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

VERSION = 1


@dataclass(frozen=True, slots=True)
class TenantLoad:
    """One tenant's numbers on one model, in one process (or summed over several)."""

    weight: int
    in_flight: int
    usage: float
    """Average requests in flight (the `Shares` average, time constant `usage_tau_s`)."""

    def plus(self, other: TenantLoad) -> TenantLoad:
        return TenantLoad(
            max(self.weight, other.weight),
            self.in_flight + other.in_flight,
            self.usage + other.usage,
        )


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One process's numbers for one model."""

    tenants: Mapping[str, TenantLoad] = field(default_factory=dict)
    """The tenants active there (a request within the window, or one in flight)."""
    replicas: Mapping[str, int] = field(default_factory=dict)
    """Requests in flight per replica name (replicas with none may be left out)."""


@dataclass(frozen=True, slots=True)
class PeerView:
    """The other processes' numbers for one model, summed."""

    tenants: Mapping[str, TenantLoad] = field(default_factory=dict)
    replicas: Mapping[str, int] = field(default_factory=dict)
    capacity: int = 0
    """The model's slots across all processes (the per-replica cap times the ready
    replicas); 0: no shared cap, each process decides on its own capacity."""

    @property
    def used(self) -> int:
        """Requests the others have in flight on the model."""
        return sum(self.replicas.values())


ALONE = PeerView()
"""No peers, or no fresh view of them: the process decides alone."""


def encode(models: Mapping[str, ModelReport]) -> str:
    body = {
        name: {
            "t": {
                t: [load.weight, load.in_flight, round(load.usage, 4)]
                for t, load in m.tenants.items()
            },
            "r": {r: n for r, n in m.replicas.items() if n > 0},
        }
        for name, m in models.items()
        if m.tenants or any(n > 0 for n in m.replicas.values())
    }
    return json.dumps({"v": VERSION, "models": body}, separators=(",", ":"))


def decode(raw: str | bytes) -> dict[str, ModelReport] | None:
    """The report's models; None when it is not a report this version understands."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            return None
        return {str(name): _model(m) for name, m in doc["models"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _model(m: Any) -> ModelReport:
    tenants = {
        str(t): TenantLoad(max(1, int(w)), max(0, int(n)), max(0.0, float(u)))
        for t, (w, n, u) in m["t"].items()
    }
    replicas = {str(r): max(0, int(n)) for r, n in m["r"].items()}
    return ModelReport(tenants, replicas)


def merge(reports: Iterable[Mapping[str, ModelReport]]) -> dict[str, ModelReport]:
    """The per-model sums of several processes' reports."""
    tenants: dict[str, dict[str, TenantLoad]] = {}
    replicas: dict[str, dict[str, int]] = {}
    for report in reports:
        for model, m in report.items():
            into = tenants.setdefault(model, {})
            for name, load in m.tenants.items():
                seen = into.get(name)
                into[name] = load if seen is None else seen.plus(load)
            counts = replicas.setdefault(model, {})
            for name, n in m.replicas.items():
                counts[name] = counts.get(name, 0) + n
    return {model: ModelReport(tenants[model], replicas[model]) for model in tenants}


def cap_left(per_replica_cap: int, peers_in_flight: int) -> int:
    """This process's cap on a replica: the shared cap less what the others hold there."""
    return max(0, per_replica_cap - peers_in_flight)


def combined(
    local: Mapping[str, TenantLoad], peers: Mapping[str, TenantLoad]
) -> dict[str, TenantLoad]:
    """Every active tenant with this process's numbers plus the others'."""
    out = dict(local)
    for name, load in peers.items():
        mine = out.get(name)
        out[name] = load if mine is None else mine.plus(load)
    return out
