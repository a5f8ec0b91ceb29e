"""What the gateway watches of its fleet: each ready engine's queue, active adapters and
latency counters, read from its `/metrics` into the replica's live state (what the
scheduling scorers read), and the replicas-by-state gauge."""

from __future__ import annotations

import aiohttp

from data_plane.gateway.engine_metrics import parse_engine_metrics
from data_plane.gateway.fleet import Fleet, Replica
from data_plane.gateway.liveness import recent_timing
from data_plane.gateway.metrics import GatewayMetrics


async def poll_load(session: aiohttp.ClientSession, replica: Replica, interval_s: float) -> None:
    """One scrape of `replica`; a failed one leaves the last load (passive health judges
    real requests)."""
    limit = aiohttp.ClientTimeout(total=max(0.5, interval_s))
    try:
        async with session.get(replica.url + "/metrics", timeout=limit) as resp:
            if resp.status != 200:
                return
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
        return
    load = parse_engine_metrics(text)
    replica.waiting = load.waiting
    replica.running = load.running
    replica.running_adapters = load.running_adapters
    replica.timing = recent_timing(replica.counters, load.counters, replica.timing)
    replica.counters = load.counters


def count_replicas(fleet: Fleet, metrics: GatewayMetrics, now: float) -> None:
    """Set `gateway_replicas` per model: ready, ejected (passive health), not ready."""
    gauge = metrics.replicas
    for route in fleet.models.values():
        metrics.declare_model(route.name)
        counts = {"ready": 0, "ejected": 0, "not_ready": 0}
        for r in route.replicas:
            if not r.ready:
                counts["not_ready"] += 1
            elif r.health.available(now):
                counts["ready"] += 1
            else:
                counts["ejected"] += 1
        for state, n in counts.items():
            gauge.labels(route.name, state).set(n)
