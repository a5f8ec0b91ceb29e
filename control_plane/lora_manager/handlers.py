"""kopf handlers for `LoraAdapter`: a thin shell around `cycle.AdapterCycle`
(its pod reads and annotations: `pod_records.py`).

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

from pathlib import PurePosixPath
from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.api.adapter_sources import AdapterSourcePolicy
from control_plane.api.constants import (
    GROUP,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.kube import KubeError, hoist_ref
from control_plane.lora_manager.admission import Refused, admission_refusal
from control_plane.lora_manager.cycle import AdapterCycle, RemovalIncompleteError
from control_plane.lora_manager.pod_records import (
    annotate_pods,
    annotate_swept,
    declared_adapters,
    list_pods,
)
from control_plane.lora_manager.status import invalid_status, readmitted
from control_plane.model_manager.resources import ADAPTER_DIR
from control_plane.operator.bodies import dump_status
from control_plane.operator.context import OperatorContext
from control_plane.operator.shell import KindShell, Pass, on_spec_change

KIND = "LoraAdapter"


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


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext, cycle: AdapterCycle) -> Pass:
    """The handlers; returns the reconcile pass, which the operator's walk repeats."""
    shell = KindShell(KIND, ctx.metrics, retry_seconds=ctx.settings.adapter_resync_seconds)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        started = shell.clock()
        generation = body.meta.get("generation")
        adapter = shell.parse(
            LoraAdapter,
            LoraAdapterStatus,
            body,
            patch,
            logger,
            invalid=lambda message: invalid_status(None, message, generation, now=ctx.now()),
        )
        if adapter is None:
            return
        namespace = adapter.metadata.namespace
        refused = await _admission(ctx, adapter)
        if refused is not None:  # `SpecValid=False` with the reason; permanent for this spec
            previous = adapter.status
            shell.refuse(
                body,
                patch,
                logger,
                refused.message,
                lambda message: invalid_status(
                    previous, message, generation, now=ctx.now(), reason=refused.reason
                ),
                log=f"LoraAdapter refused ({refused.reason}): {refused.message}",
            )
            return
        start = readmitted(adapter.status)
        if start is not adapter.status:
            logger.info(
                "LoraAdapter %s admitted now (its refusal no longer holds)", adapter.metadata.name
            )
            adapter = adapter.model_copy(update={"status": start})
        with shell.kube_pass(started):
            async with cycle.lock(adapter):
                pods = await list_pods(ctx.kube, namespace)
                views = await cycle.observe(pods)
                model = await ctx.kube.get(
                    hoist_ref(namespace, MODEL_PLURAL, adapter.spec.base_model)
                )
                outcome = await cycle.reconcile(
                    adapter, pods, views, base_model_found=model is not None
                )
        await annotate_pods(
            ctx.kube,
            namespace=namespace,
            adapter=adapter.metadata.name,
            pods=pods,
            views=views,
            status=outcome.status,
            logger=logger,
        )
        if outcome.status != adapter.status:
            patch.status.update(dump_status(outcome.status))

    # the id kopf has kept this handler's progress under since it was `register`'s own
    on_spec_change(registry, LORA_ADAPTER_PLURAL, reconcile, id="register.<locals>.adapter_changed")

    @kopf.on.delete(GROUP, VERSION, LORA_ADAPTER_PLURAL, registry=registry)
    async def adapter_deleted(
        name: str, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
        namespace = namespace or "default"
        try:
            pods = await list_pods(ctx.kube, namespace)
            await cycle.remove(namespace, name, pods)
        except (RemovalIncompleteError, KubeError) as exc:
            logger.warning("adapter %s not yet unloaded everywhere: %s", name, exc)
            raise kopf.TemporaryError(str(exc), delay=ctx.settings.adapter_resync_seconds) from exc
        logger.info("adapter %s unloaded from every pod", name)

    return reconcile


def sweep_pass(ctx: OperatorContext, cycle: AdapterCycle) -> Pass:
    """A pass over one Model that unloads from its pods what no LoraAdapter declares
    (deleted while the operator was down, loaded by hand): GPU LoRA slots are scarce. The
    operator's walk runs it over every Model every `adapter_resync_seconds`."""

    async def sweep_undeclared(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        name, namespace = str(body.meta.get("name", "")), body.meta.get("namespace") or "default"
        try:
            pods = [p for p in await list_pods(ctx.kube, namespace) if p.model == name]
            if not pods:
                return
            views = await cycle.observe(pods)
            declared = await declared_adapters(ctx.kube, namespace)  # after observing (see cycle)
        except KubeError as exc:
            logger.warning("cannot check %s's pods for undeclared adapters: %s", name, exc)
            return
        swept = await cycle.unload_orphans(pods, views, declared)
        if swept:
            await annotate_swept(
                ctx.kube, namespace=namespace, pods=pods, views=views, swept=swept, logger=logger
            )

    return sweep_undeclared
