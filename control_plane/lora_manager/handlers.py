"""kopf handlers for `LoraAdapter`: a thin shell around `cycle.AdapterCycle`.

- create / update / resume, and every `adapter_resync_seconds` the operator's walk
  (`operator/walk.py`): one reconcile pass (admission, then observe the base model's pods,
  place, load, unload, write the status); the walk is what repairs drift, places adapters
  on new or restarted pods, and re-admits an adapter refused by a policy (or a Model's
  name) that has changed since;
- delete: unload everywhere, then let kopf release the finalizer (a temporary error while
  some ready pod's sidecar cannot be reached); the only finalizer Hoist asks for: no
  garbage collector unloads an adapter from pods that live on;
- a spec the types refuse (the CRD schema normally does): `SpecValid=False`, permanent;
- `sweep_pass`: a pass per Model (run by the walk every `adapter_resync_seconds`) that
  unloads from its pods the adapters no LoraAdapter declares.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.api.adapter_sources import AdapterSourcePolicy
from control_plane.api.constants import (
    ANNOTATION_LOADED_ADAPTERS,
    GROUP,
    LABEL_ROLE,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.kube import KubeError, core_ref, hoist_ref
from control_plane.lora_manager.admission import Refused, admission_refusal
from control_plane.lora_manager.cycle import RemovalIncompleteError
from control_plane.lora_manager.placement import PodRef, PodView, SidecarPhase
from control_plane.lora_manager.plan import loaded_after
from control_plane.lora_manager.pods import pod_ref
from control_plane.lora_manager.status import invalid_status, readmitted
from control_plane.model_manager.resources import ADAPTER_DIR, ROLE_INFERENCE
from control_plane.operator.bodies import already_reported, dump_status, error_text, parse
from control_plane.operator.context import OperatorContext

KIND = "LoraAdapter"
Pass = Callable[[kopf.Body, kopf.Patch, kopf.Logger], Awaitable[None]]


async def list_pods(ctx: OperatorContext, namespace: str) -> list[PodRef]:
    pods = await ctx.kube.list(
        core_ref(namespace, "pods"), label_selector=f"{LABEL_ROLE}={ROLE_INFERENCE}"
    )
    return [ref for ref in map(pod_ref, pods) if ref is not None]


async def annotate_pods(
    ctx: OperatorContext,
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
    await _write_annotations(ctx, namespace, pods, wanted, logger)


async def _write_annotations(
    ctx: OperatorContext,
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
            await ctx.kube.merge_patch(
                core_ref(namespace, "pods", pod),
                {"metadata": {"annotations": {ANNOTATION_LOADED_ADAPTERS: ",".join(names)}}},
            )
        except KubeError as exc:
            logger.warning("could not annotate pod %s: %s", pod, exc)


async def declared_adapters(ctx: OperatorContext, namespace: str) -> dict[str, set[str]]:
    """The LoraAdapters of `namespace`, as base model -> adapter names (pure reads; one
    being deleted still counts: its own handler unloads it)."""
    declared: dict[str, set[str]] = {}
    for item in await ctx.kube.list(hoist_ref(namespace, LORA_ADAPTER_PLURAL)):
        base = (item.get("spec") or {}).get("baseModel")
        name = (item.get("metadata") or {}).get("name")
        if isinstance(base, str) and isinstance(name, str):
            declared.setdefault(base, set()).add(name)
    return declared


async def annotate_swept(
    ctx: OperatorContext,
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
    await _write_annotations(ctx, namespace, pods, wanted, logger)


async def _admission(ctx: OperatorContext, adapter: LoraAdapter) -> Refused | None:
    """The tenant boundary (`admission.py`): its Tenant's source policy, else the
    operator's; a Model of the same name. An API error here is retried like any other."""
    namespace = adapter.metadata.namespace
    policy = ctx.settings.adapter_source_policy()
    try:
        if adapter.spec.tenant is not None:
            found = await ctx.kube.get(hoist_ref(namespace, TENANT_PLURAL, adapter.spec.tenant))
            own = ((found or {}).get("spec") or {}).get("adapterSources")
            if isinstance(own, dict):
                try:
                    policy = AdapterSourcePolicy.model_validate(own)
                except ValidationError:
                    return Refused("SourceNotAllowed", "the Tenant's adapterSources is invalid")
        twin = await ctx.kube.get(hoist_ref(namespace, MODEL_PLURAL, adapter.metadata.name))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=ctx.settings.adapter_resync_seconds) from exc
    return await admission_refusal(
        adapter,
        policy,
        model_named_alike=twin is not None,
        forbidden=[PurePosixPath(ADAPTER_DIR)],
    )


def _refuse(
    ctx: OperatorContext,
    adapter: LoraAdapter,
    refused: Refused,
    *,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
) -> None:
    """`SpecValid=False` with the reason, once per generation; permanent for this spec."""
    ctx.metrics.reconciles.labels(KIND, "invalid").inc()
    if already_reported(body):
        return
    logger.error("LoraAdapter refused (%s): %s", refused.reason, refused.message)
    status = invalid_status(
        adapter.status,
        refused.message,
        body.meta.get("generation"),
        now=ctx.cycle.now(),
        reason=refused.reason,
    )
    patch.status.update(dump_status(status))
    raise kopf.PermanentError(refused.message)


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> Pass:
    """The handlers; returns the reconcile pass, which the operator's walk repeats."""
    resource = (GROUP, VERSION, LORA_ADAPTER_PLURAL)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        started = time.perf_counter()
        try:
            adapter = parse(LoraAdapter, LoraAdapterStatus, body)
        except ValidationError as exc:
            ctx.metrics.reconciles.labels(KIND, "invalid").inc()
            previous = None
            message = error_text(exc)
            if already_reported(body):
                return
            logger.error("invalid LoraAdapter: %s", message)
            patch.status.update(
                dump_status(
                    invalid_status(
                        previous, message, body.meta.get("generation"), now=ctx.cycle.now()
                    )
                )
            )
            raise kopf.PermanentError(message) from exc
        namespace = adapter.metadata.namespace
        refused = await _admission(ctx, adapter)
        if refused is not None:
            _refuse(ctx, adapter, refused, body=body, patch=patch, logger=logger)
            return
        start = readmitted(adapter.status)
        if start is not adapter.status:
            logger.info(
                "LoraAdapter %s admitted now (its refusal no longer holds)", adapter.metadata.name
            )
            adapter = adapter.model_copy(update={"status": start})
        try:
            async with ctx.cycle.lock(adapter):
                pods = await list_pods(ctx, namespace)
                views = await ctx.cycle.observe(pods)
                model = await ctx.kube.get(
                    hoist_ref(namespace, MODEL_PLURAL, adapter.spec.base_model)
                )
                outcome = await ctx.cycle.reconcile(
                    adapter, pods, views, base_model_found=model is not None
                )
        except KubeError as exc:
            ctx.metrics.reconciles.labels(KIND, "error").inc()
            raise kopf.TemporaryError(str(exc), delay=ctx.settings.adapter_resync_seconds) from exc
        finally:
            ctx.metrics.reconcile_seconds.labels(KIND).observe(time.perf_counter() - started)
        ctx.metrics.reconciles.labels(KIND, "ok").inc()
        await annotate_pods(
            ctx,
            namespace=namespace,
            adapter=adapter.metadata.name,
            pods=pods,
            views=views,
            status=outcome.status,
            logger=logger,
        )
        if outcome.status != adapter.status:
            patch.status.update(dump_status(outcome.status))

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, field="spec", registry=registry)
    async def adapter_changed(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any
    ) -> None:
        await reconcile(body, patch, logger)

    @kopf.on.delete(*resource, registry=registry)
    async def adapter_deleted(
        name: str, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
        namespace = namespace or "default"
        try:
            pods = await list_pods(ctx, namespace)
            await ctx.cycle.remove(namespace, name, pods)
        except (RemovalIncompleteError, KubeError) as exc:
            logger.warning("adapter %s not yet unloaded everywhere: %s", name, exc)
            raise kopf.TemporaryError(str(exc), delay=ctx.settings.adapter_resync_seconds) from exc
        logger.info("adapter %s unloaded from every pod", name)

    return reconcile


def sweep_pass(ctx: OperatorContext) -> Pass:
    """A pass over one Model that unloads from its pods what no LoraAdapter declares
    (deleted while the operator was down, loaded by hand): GPU LoRA slots are scarce. The
    operator's walk runs it over every Model every `adapter_resync_seconds`."""

    async def sweep_undeclared(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        name, namespace = str(body.meta.get("name", "")), body.meta.get("namespace") or "default"
        try:
            pods = [p for p in await list_pods(ctx, namespace) if p.model == name]
            if not pods:
                return
            views = await ctx.cycle.observe(pods)
            declared = await declared_adapters(ctx, namespace)  # after observing (see cycle)
        except KubeError as exc:
            logger.warning("cannot check %s's pods for undeclared adapters: %s", name, exc)
            return
        swept = await ctx.cycle.unload_orphans(pods, views, declared)
        if swept:
            await annotate_swept(
                ctx, namespace=namespace, pods=pods, views=views, swept=swept, logger=logger
            )

    return sweep_undeclared
