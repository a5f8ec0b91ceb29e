"""The LoRA manager's Kubernetes reads and writes beside the sidecars: the inference pods,
the declared adapters, and each pod's loaded-adapters annotation (the gateway routes on it).
"""

from __future__ import annotations

import kopf

from control_plane.api import LoraAdapterStatus
from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, LABEL_ROLE, LORA_ADAPTER_PLURAL
from control_plane.kube import KubeClient, KubeError, core_ref, hoist_ref
from control_plane.lora_manager.placement import PodRef, PodView, SidecarPhase
from control_plane.lora_manager.plan import loaded_after
from control_plane.lora_manager.pods import pod_ref
from control_plane.model_manager.resources import ROLE_INFERENCE


async def list_pods(kube: KubeClient, namespace: str) -> list[PodRef]:
    pods = await kube.list(
        core_ref(namespace, "pods"), label_selector=f"{LABEL_ROLE}={ROLE_INFERENCE}"
    )
    return [ref for ref in map(pod_ref, pods) if ref is not None]


async def annotate_pods(
    kube: KubeClient,
    *,
    namespace: str,
    adapter: str,
    pods: list[PodRef],
    views: list[PodView],
    status: LoraAdapterStatus,
    logger: kopf.Logger,
) -> None:
    """Record on each pod the adapters its sidecar holds loaded (the gateway routes on it)."""
    loaded_on = {entry.pod for entry in status.loaded_on}
    wanted = {
        view.name: names
        for view in views
        if (names := loaded_after(view, adapter, loaded_now=view.name in loaded_on)) is not None
    }
    await _write_annotations(kube, namespace, pods, wanted, logger)


async def _write_annotations(
    kube: KubeClient,
    namespace: str,
    pods: list[PodRef],
    wanted: dict[str, tuple[str, ...]],
    logger: kopf.Logger,
) -> None:
    """Set each pod's loaded-adapters annotation to `wanted[pod]` where it says otherwise."""
    current = {p.name: p.loaded_annotation for p in pods}
    for pod, names in wanted.items():
        if names == current.get(pod):
            continue
        try:
            await kube.merge_patch(
                core_ref(namespace, "pods", pod),
                {"metadata": {"annotations": {ANNOTATION_LOADED_ADAPTERS: ",".join(names)}}},
            )
        except KubeError as exc:
            logger.warning("could not annotate pod %s: %s", pod, exc)


async def declared_adapters(kube: KubeClient, namespace: str) -> dict[str, set[str]]:
    """The LoraAdapters of `namespace`, as base model -> adapter names (pure reads; one
    being deleted still counts: its own handler unloads it)."""
    declared: dict[str, set[str]] = {}
    for item in await kube.list(hoist_ref(namespace, LORA_ADAPTER_PLURAL)):
        base = (item.get("spec") or {}).get("baseModel")
        name = (item.get("metadata") or {}).get("name")
        if isinstance(base, str) and isinstance(name, str):
            declared.setdefault(base, set()).add(name)
    return declared


async def annotate_swept(
    kube: KubeClient,
    *,
    namespace: str,
    pods: list[PodRef],
    views: list[PodView],
    swept: dict[str, tuple[str, ...]],
    logger: kopf.Logger,
) -> None:
    """The loaded-adapters annotation of each pod something was unloaded from, without it."""
    wanted = {
        view.name: tuple(
            sorted(
                n
                for n, a in view.adapters.items()
                if a.phase is SidecarPhase.LOADED and n not in swept[view.name]
            )
        )
        for view in views
        if view.name in swept and view.adapters is not None
    }
    await _write_annotations(kube, namespace, pods, wanted, logger)
