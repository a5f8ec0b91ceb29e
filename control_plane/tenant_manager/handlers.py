"""kopf handlers for `Tenant`: validate it against its namespace, write the status.

- create / update / resume: read the namespace's Tenants, their key Secrets (by name:
  `get`, never `list`), Models and LoraAdapters, check this Tenant
  (`validation.check_tenant`), write the status;
- every `tenant_resync_seconds`, the operator's walk (`operator/walk.py`; no kopf timer,
  so Tenants carry no finalizer) re-checks each namespace holding Tenants with one
  observation for all of them (`register` returns that re-check): it is what notices a
  Secret that appeared, changed or went away later, and a key another tenant took since;
- a Model or LoraAdapter created or deleted: re-check every Tenant of its namespace at
  once (an `allowedModels` id may have come into or gone out of existence);
- a spec the types refuse (the CRD schema normally does first): `SpecValid=False`,
  `Failed`, permanent until the spec changes.

Secrets are turned into digests at once; no key reaches a log line, an event, a metric
or the status (which counts keys and names Secret entries, never their values).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
from control_plane.kube import KubeError, core_ref, hoist_ref
from control_plane.operator.bodies import dump_status, parse
from control_plane.operator.context import OperatorContext
from control_plane.operator.shell import KindShell, on_spec_change
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
log = logging.getLogger(__name__)
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


def valid_tenants(docs: list[Json]) -> list[Tenant]:
    """The Tenants the types accept, with their status; the others' own passes report them."""
    out = []
    for doc in docs:
        try:
            out.append(parse(Tenant, TenantStatus, doc))
        except ValidationError:
            continue
    return out


@dataclass(frozen=True)
class Namespace:
    """One look at what a namespace's Tenants depend on."""

    tenants: list[Tenant]
    keys: dict[str, KeySet]
    catalog: Catalog

    def covers(self, tenant: Tenant) -> bool:
        """Seen with the same key Secret reference (so its keys here are its keys)."""
        name, ref = tenant.metadata.name, tenant.spec.api_keys_secret
        return any(t.metadata.name == name and t.spec.api_keys_secret == ref for t in self.tenants)

    def status(self, tenant: Tenant, *, now: datetime) -> TenantStatus:
        name = tenant.metadata.name
        keys = self.keys.get(name) or kube_keys(tenant, {})
        duplicates = duplicate_keys({**self.keys, name: keys}).get(name, ())
        report = check_tenant(tenant, keys, self.catalog, duplicates=duplicates)
        return tenant_status(tenant.status, report, tenant.metadata.generation, now=now)


async def observe(ctx: OperatorContext, namespace: str, current: Tenant | None = None) -> Namespace:
    """The namespace's Tenants (`current` as its handler sees it, fresher than a list),
    each one's key digests (every named Secret read once), its Models and adapters."""
    tenants = valid_tenants(await ctx.kube.list(hoist_ref(namespace, TENANT_PLURAL)))
    if current is not None:
        tenants = [current] + [t for t in tenants if t.metadata.name != current.metadata.name]
    secrets: dict[str, Json] = {}
    forbidden: set[str] = set()
    for name in sorted({t.spec.api_keys_secret.name for t in tenants if t.spec.api_keys_secret}):
        try:
            found = await ctx.kube.get(core_ref(namespace, "secrets", name))
        except KubeError as exc:
            if exc.status != 403:
                raise
            forbidden.add(name)
            continue
        if found is not None:
            secrets[name] = found
    catalog = catalog_of(
        await ctx.kube.list(hoist_ref(namespace, MODEL_PLURAL)),
        await ctx.kube.list(hoist_ref(namespace, LORA_ADAPTER_PLURAL)),
    )
    keys = {t.metadata.name: kube_keys(t, secrets, frozenset(forbidden)) for t in tenants}
    return Namespace(tenants, keys, catalog)


def report_change(logger: kopf.Logger, tenant: Tenant, status: TenantStatus) -> None:
    """Log (and so post as an event) a Tenant that is not ready, once per new message."""
    ready = find_condition(status.conditions, CONDITION_READY)
    before = find_condition(tenant.status.conditions, CONDITION_READY) if tenant.status else None
    if ready is None or ready.status == "True":
        return
    if before is None or before.message != ready.message:
        # names and reasons only, never a key
        logger.warning(
            "Tenant %s is not ready (%s): %s", tenant.metadata.name, ready.reason, ready.message
        )


def invalid_status(message: str, generation: int | None, *, now: datetime) -> TenantStatus:
    """`Failed` for a spec the types refuse: an invalid quota, or another invalid field."""
    quota = message.startswith("spec.quotas")
    reason = TenantReason.INVALID_QUOTA if quota else TenantReason.INVALID_SPEC
    return invalid_tenant_status(None, reason, message, generation, now=now)


def register(
    registry: kopf.OperatorRegistry, ctx: OperatorContext
) -> Callable[[str], Awaitable[None]]:
    """The handlers; returns the re-check of one namespace, which the operator's walk
    repeats for every namespace holding Tenants."""
    shell = KindShell(KIND, ctx.metrics, retry_seconds=ctx.settings.tenant_resync_seconds)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        now = ctx.now()
        generation = body.meta.get("generation")
        tenant = shell.parse(
            Tenant,
            TenantStatus,
            body,
            patch,
            logger,
            invalid=lambda message: invalid_status(message, generation, now=now),
        )
        if tenant is None:
            return
        with shell.kube_pass():
            seen = await observe(ctx, tenant.metadata.namespace, tenant)
        status = seen.status(tenant, now=now)
        if status != tenant.status:
            report_change(logger, tenant, status)
            patch.status.update(dump_status(status))

    # the id kopf has kept this handler's progress under since it was `register`'s own
    on_spec_change(registry, TENANT_PLURAL, reconcile, id="register.<locals>.tenant_changed")

    async def recheck_namespace(namespace: str) -> None:
        """Observe `namespace` once and write every valid Tenant's status that changed."""
        try:
            seen = await observe(ctx, namespace)
            now = ctx.now()
            for tenant in seen.tenants:
                status = seen.status(tenant, now=now)
                if status == tenant.status:
                    continue
                report_change(log, tenant, status)
                await ctx.kube.merge_patch(
                    hoist_ref(namespace, TENANT_PLURAL, tenant.metadata.name, "status"),
                    {"status": dump_status(status)},
                )
        except KubeError as exc:
            log.warning("could not re-check the Tenants of %s: %s", namespace, exc)

    async def model_ids_changed(event: kopf.RawEvent, namespace: str | None, **_: Any) -> None:
        # Only creations and deletions change which ids exist (None: the initial listing,
        # which the Tenants' own resume handlers cover).
        if event.get("type") in ("ADDED", "DELETED") and namespace:
            await recheck_namespace(namespace)

    for plural in (MODEL_PLURAL, LORA_ADAPTER_PLURAL):
        kopf.on.event(GROUP, VERSION, plural, registry=registry)(model_ids_changed)
    return recheck_namespace
