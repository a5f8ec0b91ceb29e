"""kopf handlers for `Model`: apply its Deployment and Service, mirror their status.

- create / update / resume, and every `model_resync_seconds` the operator's walk
  (`operator/walk.py`, no kopf timer, so no finalizer): create or patch the Deployment and
  the Service (owned by the Model: deleting the Model deletes them, and its pods with the
  adapters loaded in them, so a Model needs no finalizer), then write the status; a spec
  change changes the pod template and so rolls out;
- any event on a Deployment Hoist manages: refresh its Model's status right away;
- a spec the types refuse: `SpecValid=False`, permanent, nothing applied.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api import Model, ModelStatus
from control_plane.api.constants import (
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    MANAGED_BY,
    MODEL_PLURAL,
)
from control_plane.kube import KubeError, apps_ref, core_ref, hoist_ref
from control_plane.model_manager.resources import (
    PodConfig,
    deployment_for,
    selector_of,
    service_for,
)
from control_plane.model_manager.status import invalid_model_status, model_status
from control_plane.operator.bodies import dump_status, parse, plain
from control_plane.operator.context import OperatorContext
from control_plane.operator.shell import KindShell, Pass, on_spec_change

KIND = "Model"


async def _observe(
    ctx: OperatorContext, model: Model
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Model's Deployment and its pods (their engine restarts go into its status)."""
    ns, name = model.metadata.namespace, model.metadata.name
    deployment = await ctx.kube.get(apps_ref(ns, "deployments", name))
    selector = ",".join(f"{k}={v}" for k, v in selector_of(model).items())
    pods = await ctx.kube.list(core_ref(ns, "pods"), label_selector=selector)
    return deployment, pods


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext, pods: PodConfig) -> Pass:
    """The handlers; returns the reconcile pass, which the operator's walk repeats."""
    shell = KindShell(KIND, ctx.metrics, retry_seconds=ctx.settings.model_resync_seconds)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        now = ctx.now()
        generation = body.meta.get("generation")
        model = shell.parse(
            Model,
            ModelStatus,
            body,
            patch,
            logger,
            invalid=lambda message: invalid_model_status(None, message, generation, now=now),
        )
        if model is None:
            return
        ns = model.metadata.namespace
        uid = str(body.meta.get("uid", ""))
        with shell.kube_pass():
            await ctx.kube.apply(
                apps_ref(ns, "deployments"), deployment_for(model, pods, owner_uid=uid)
            )
            await ctx.kube.apply(core_ref(ns, "services"), service_for(model, owner_uid=uid))
            deployment, observed = await _observe(ctx, model)
        status = model_status(model, deployment, now=now, pods=observed)
        if status != model.status:
            patch.status.update(dump_status(status))

    # the id kopf has kept this handler's progress under since it was `register`'s own
    on_spec_change(registry, MODEL_PLURAL, reconcile, id="register.<locals>.model_changed")

    @kopf.on.event(
        "apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry
    )
    async def deployment_event(
        body: kopf.Body, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
        name = body.meta.labels.get(LABEL_MODEL)
        if not name or not namespace:
            return
        try:
            doc = await ctx.kube.get(hoist_ref(namespace, MODEL_PLURAL, name))
            if doc is None:
                return
            try:
                model = parse(Model, ModelStatus, doc)
            except ValidationError:
                return
            deployment = None if body.meta.get("deletionTimestamp") else plain(body)
            status = model_status(model, deployment, now=ctx.now())
            if status != model.status:
                await ctx.kube.merge_patch(
                    hoist_ref(namespace, MODEL_PLURAL, name, "status"),
                    {"status": dump_status(status)},
                )
        except KubeError as exc:
            logger.warning("could not refresh the status of Model %s: %s", name, exc)

    return reconcile
