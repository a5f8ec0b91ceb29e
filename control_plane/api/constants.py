"""Names that both substrates (Kubernetes and the embedded default) agree on."""

from typing import Final

GROUP: Final = "serving.hoist.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

MODEL_KIND: Final = "Model"
MODEL_PLURAL: Final = "models"
LORA_ADAPTER_KIND: Final = "LoraAdapter"
LORA_ADAPTER_PLURAL: Final = "loraadapters"
TENANT_KIND: Final = "Tenant"
TENANT_PLURAL: Final = "tenants"

# Labels set on everything the control plane creates.
LABEL_MODEL: Final = f"{GROUP}/model"
LABEL_ROLE: Final = f"{GROUP}/role"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "hoist"
# Label on a Secret that a tenant's LoraAdapter may name as its credentialsSecretRef.
LABEL_TENANT: Final = f"{GROUP}/tenant"

# Annotation on an inference pod listing the adapters its sidecar reports loaded.
ANNOTATION_LOADED_ADAPTERS: Final = f"{GROUP}/loaded-adapters"

FINALIZER: Final = f"{GROUP}/unload-adapters"

# Condition types.
CONDITION_READY: Final = "Ready"
CONDITION_SPEC_VALID: Final = "SpecValid"
CONDITION_PROGRESSING: Final = "Progressing"
CONDITION_SCALING: Final = "Scaling"
CONDITION_ENGINE_STABLE: Final = "EngineStable"
CONDITION_KV_EVENT_ROUTING: Final = "KvEventRouting"
"""Only on `routingPolicy: precise-prefix` Models: whether the engines publish the KV-cache
events that policy routes by."""

# Default ports of the embedded default and the container images.
GATEWAY_PORT: Final = 8080
ADMIN_PORT: Final = 8079
ENGINE_PORT: Final = 8000
SIDECAR_PORT: Final = 8090
KV_EVENTS_PORT_OFFSET: Final = 1000
"""An engine serving on port P publishes its KV-cache events on P + this (ZMQ), for the
gateway's `precise-prefix` routing (data_plane/gateway/kv_events/follower.py)."""
