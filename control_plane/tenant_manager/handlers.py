"""kopf handlers for `Tenant`: validate it against its namespace, write the status.

- create / update / resume, and a timer every `tenant_resync_seconds`: read the
  namespace's Tenants, their key Secrets (by name: `get`, never `list`), Models and
  LoraAdapters, check this Tenant (`validation.check_tenant`), write the status. The
  timer is what notices a Secret or Model that appeared, changed or went away later, and
  a key another tenant took since;
- a spec the types refuse (the CRD schema normally does first): `SpecValid=False`,
  `Failed`, permanent until the spec changes.

Secrets are turned into digests at once; no key reaches a log line, an event, a metric
or the status (which counts keys and names Secret entries, never their values).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from control_plane.api import Tenant, TenantStatus
from control_plane.api.common import find_condition
from control_plane.api.constants import (
    CONDITION_READY,
    GROUP,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.kube import KubeError, core_path, hoist_path
from control_plane.operator.bodies import already_reported, dump_status, error_text, parse
from control_plane.operator.context import OperatorContext
from control_plane.tenant_manager.status import invalid_tenant_status, tenant_status
from control_plane.tenant_manager.validation import (
    Catalog,
    KeySet,
    TenantReason,
    check_tenant,
    duplicate_keys,
    kube_keys,
)

KIND = "Tenant"
Json = dict[str, Any]


def _owner(doc: Mapping[str, Any]) -> str | None:
    spec = doc.get("spec")
    owner = spec.get("tenant") if isinstance(spec, Mapping) else None
    return owner if isinstance(owner, str) else None


def _name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def catalog_of(models: list[Json], adapters: list[Json]) -> Catalog:
    return Catalog.of((_name(d), _owner(d)) for d in [*models, *adapters] if _name(d))


def tenants_of(docs: list[Json], current: Tenant) -> list[Tenant]:
    """The namespace's valid Tenants, `current` as this pass sees it (fresher than a list)."""
    out = [current]
    for doc in docs:
        if _name(doc) == current.metadata.name:
            continue
        try:
            out.append(Tenant.model_validate({k: v for k, v in doc.items() if k != "status"}))
        except ValidationError:
            continue  # its own pass reports it
    return out


async def observe_keys(
    ctx: OperatorContext, namespace: str, tenants: list[Tenant]
) -> dict[str, KeySet]:
    """Each tenant's key digests, reading every named Secret once."""
    secrets: dict[str, Json] = {}
    for name in sorted({t.spec.api_keys_secret.name for t in tenants if t.spec.api_keys_secret}):
        found = await ctx.kube.get(core_path(namespace, "secrets", name))
        if found is not None:
            secrets[name] = found
    return {t.metadata.name: kube_keys(t, secrets) for t in tenants}


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    resource = (GROUP, VERSION, TENANT_PLURAL)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        started = time.perf_counter()
        now = ctx.cycle.now()
        generation = body.meta.get("generation")
        try:
            tenant = parse(Tenant, TenantStatus, body)
        except ValidationError as exc:
            ctx.metrics.reconciles.labels(KIND, "invalid").inc()
            message = error_text(exc)
            if already_reported(body):
                return
            quota = message.startswith("spec.quotas")
            reason = TenantReason.INVALID_QUOTA if quota else TenantReason.INVALID_SPEC
            logger.error("invalid Tenant: %s", message)
            patch.status.update(
                dump_status(invalid_tenant_status(None, reason, message, generation, now=now))
            )
            raise kopf.PermanentError(message) from exc
        namespace = tenant.metadata.namespace
        try:
            tenants = tenants_of(await ctx.kube.list(hoist_path(namespace, TENANT_PLURAL)), tenant)
            keys = await observe_keys(ctx, namespace, tenants)
            catalog = catalog_of(
                await ctx.kube.list(hoist_path(namespace, MODEL_PLURAL)),
                await ctx.kube.list(hoist_path(namespace, LORA_ADAPTER_PLURAL)),
            )
        except KubeError as exc:
            ctx.metrics.reconciles.labels(KIND, "error").inc()
            raise kopf.TemporaryError(str(exc), delay=ctx.settings.tenant_resync_seconds) from exc
        finally:
            ctx.metrics.reconcile_seconds.labels(KIND).observe(time.perf_counter() - started)
        name = tenant.metadata.name
        report = check_tenant(
            tenant, keys[name], catalog, duplicates=duplicate_keys(keys).get(name, ())
        )
        ctx.metrics.reconciles.labels(KIND, "ok").inc()
        status = tenant_status(tenant.status, report, generation, now=now)
        if status == tenant.status:
            return
        ready = find_condition(status.conditions, CONDITION_READY)
        before = (
            find_condition(tenant.status.conditions, CONDITION_READY) if tenant.status else None
        )
        if (
            ready is not None
            and not report.ready
            and (before is None or before.message != ready.message)
        ):
            # posted as an event on the Tenant too: names and reasons only, never a key
            logger.warning("Tenant %s is not ready (%s): %s", name, ready.reason, ready.message)
        patch.status.update(dump_status(status))

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, field="spec", registry=registry)
    async def tenant_changed(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any
    ) -> None:
        await reconcile(body, patch, logger)

    @kopf.timer(
        *resource,
        interval=ctx.settings.tenant_resync_seconds,
        initial_delay=ctx.settings.tenant_resync_seconds,
        registry=registry,
    )
    async def tenant_resync(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any
    ) -> None:
        try:
            await reconcile(body, patch, logger)
        except kopf.PermanentError:
            return  # the status says why; the next spec change tries again
