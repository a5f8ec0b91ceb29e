"""Hoist's resource types: the single source of truth for both substrates and the CRDs.

Pure data: this package imports pydantic and nothing that does I/O, so the data plane may
import it too (the one import allowed across the planes).
"""

from control_plane.api.common import Condition, ConditionStatus, ObjectMeta
from control_plane.api.lora_adapter import (
    LoadedOn,
    LoraAdapter,
    LoraAdapterPhase,
    LoraAdapterSpec,
    LoraAdapterStatus,
    Placement,
    PlacementPolicy,
)
from control_plane.api.model import (
    Autoscaling,
    EngineKind,
    KVCache,
    LoraLimits,
    Model,
    ModelPhase,
    ModelSpec,
    ModelStatus,
    Resources,
    RoutingPolicy,
)
from control_plane.api.tenant import (
    QuotaStoreOutage,
    SecretReference,
    Tenant,
    TenantPhase,
    TenantQuotas,
    TenantSpec,
    TenantStatus,
)

__all__ = [
    "Autoscaling",
    "Condition",
    "ConditionStatus",
    "EngineKind",
    "KVCache",
    "LoadedOn",
    "LoraAdapter",
    "LoraAdapterPhase",
    "LoraAdapterSpec",
    "LoraAdapterStatus",
    "LoraLimits",
    "Model",
    "ModelPhase",
    "ModelSpec",
    "ModelStatus",
    "ObjectMeta",
    "Placement",
    "PlacementPolicy",
    "QuotaStoreOutage",
    "Resources",
    "RoutingPolicy",
    "SecretReference",
    "Tenant",
    "TenantPhase",
    "TenantQuotas",
    "TenantSpec",
    "TenantStatus",
]
