"""Per-tenant Prometheus metrics; the tenant label is bounded by the declared tenants."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class TenantMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "gateway_tenant_requests_total",
            "Requests admitted, by tenant.",
            ["tenant"],
            registry=registry,
        )
        self._tokens = Counter(
            "gateway_tenant_tokens_total",
            "Prompt plus completion tokens served, by tenant (the engine's usage).",
            ["tenant"],
            registry=registry,
        )
        self._throttled = Counter(
            "gateway_tenant_throttled_total",
            "Requests refused with 429 by a tenant quota, by tenant and quota.",
            ["tenant", "quota"],
            registry=registry,
        )
        self._denied = Counter(
            "gateway_tenant_denied_total",
            "Requests refused by tenancy (unauthorized, forbidden, not_found), by tenant.",
            ["tenant", "reason"],
            registry=registry,
        )

        self._queue = Histogram(
            "gateway_tenant_queue_seconds",
            "Time a tenant's requests waited for a replica (only those that waited).",
            ["tenant"],
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        )

        self._store_up = Gauge(
            "gateway_quota_store_up",
            "1 while the shared quota store (Redis) is used; 0 while its breaker is open.",
            registry=registry,
        )
        self._store_up.set(1)
        self._store_errors = Counter(
            "gateway_quota_store_errors_total",
            "Calls to the shared quota store that failed, by kind (error, timeout).",
            ["kind"],
            registry=registry,
        )
        self._store_bypassed = Counter(
            "gateway_quota_store_bypassed_total",
            "Requests decided without the shared quota store while it was unavailable,"
            " by outcome (fail_open: counted in this replica; fail_closed: refused 503).",
            ["tenant", "outcome"],
            registry=registry,
        )

        self._share_sync_up = Gauge(
            "gateway_share_sync_up",
            "1 while fair shares and per-replica caps are decided on every gateway"
            " process's numbers (shared through Redis); 0 while this process decides alone.",
            registry=registry,
        )
        self._share_sync_errors = Counter(
            "gateway_share_sync_errors_total",
            "Share syncs with Redis that failed, by kind (error, timeout).",
            ["kind"],
            registry=registry,
        )
        self._share_peers = Gauge(
            "gateway_share_peers",
            "Other gateway processes whose numbers the last share sync read.",
            registry=registry,
        )

    def share_sync_up(self, up: bool) -> None:
        self._share_sync_up.set(1 if up else 0)

    def share_sync_error(self, kind: str) -> None:
        self._share_sync_errors.labels(kind).inc()

    def share_peers(self, count: int) -> None:
        self._share_peers.set(count)

    def store_up(self, up: bool) -> None:
        self._store_up.set(1 if up else 0)

    def store_error(self, kind: str) -> None:
        self._store_errors.labels(kind).inc()

    def store_bypassed(self, tenant: str, outcome: str) -> None:
        self._store_bypassed.labels(tenant, outcome).inc()

    def queued(self, tenant: str, seconds: float) -> None:
        self._queue.labels(tenant).observe(seconds)

    def admitted(self, tenant: str) -> None:
        self._requests.labels(tenant).inc()

    def tokens(self, tenant: str, count: int) -> None:
        if count > 0:
            self._tokens.labels(tenant).inc(count)

    def throttled(self, tenant: str, quota: str) -> None:
        self._throttled.labels(tenant, quota).inc()

    def denied(self, reason: str, tenant: str = "") -> None:
        self._denied.labels(tenant, reason).inc()
