"""Tenancy's errors, in OpenAI's shape like the rest of the gateway's (pure)."""

from __future__ import annotations

from data_plane.gateway.errors import GatewayError, NoReadyReplicaError, OverCapacityError


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class QuotaExceededError(OverCapacityError):
    code = "tenant_quota_exceeded"


class QuotaStoreUnavailableError(NoReadyReplicaError):
    """503: the shared quota store is down and the tenant's quotas fail closed."""

    code = "quota_store_unavailable"
