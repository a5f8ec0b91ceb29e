"""kopf indexes of Hoist's resources, and the start/stop of the periodic walk over them.

`register(registry, jobs, walk)` adds one `@kopf.index` per kind (namespace -> the plain
bodies; an index puts no finalizer on anything) and a startup handler that hands the
indexes to `jobs` and starts the walk; a cleanup handler stops it. `each` runs a
per-resource pass over a snapshot of an index with bounded concurrency, writing the
status patch the pass leaves, so the managers' reconcile functions serve both their kopf
handlers and the walk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import kopf

from control_plane.api.constants import (
    GROUP,
    LORA_ADAPTER_PLURAL,
    MODEL_PLURAL,
    TENANT_PLURAL,
    VERSION,
)
from control_plane.kube import KubeClient, KubeError, hoist_ref
from control_plane.operator.bodies import plain
from control_plane.operator.walk import Job, PeriodicWalk

log = logging.getLogger(__name__)
Json = dict[str, Any]
PLURALS = (TENANT_PLURAL, MODEL_PLURAL, LORA_ADAPTER_PLURAL)
Pass = Callable[[kopf.Body, kopf.Patch, kopf.Logger], Awaitable[None]]


def _index_id(plural: str) -> str:
    return f"hoist_index_{plural}"


class Indexed:
    """What kopf's indexes hold now (the same objects kopf keeps updating)."""

    def __init__(self, indexes: dict[str, kopf.Index[str, Json]]) -> None:
        self._indexes = indexes

    def namespaces(self, plural: str) -> list[str]:
        index = self._indexes.get(plural)
        return sorted(index) if index is not None else []

    def docs(self, plural: str) -> list[Json]:
        """A snapshot (taken without yielding, so kopf cannot change it meanwhile)."""
        index = self._indexes.get(plural)
        return [doc for store in index.values() for doc in store] if index is not None else []


def _name_of(doc: Json) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


async def each(
    kube: KubeClient,
    plural: str,
    docs: Sequence[Json],
    one_pass: Pass,
    *,
    concurrency: int,
    fresh: bool = False,
) -> None:
    """`one_pass(body, patch, logger)` for every doc not being deleted, at most
    `concurrency` at once; the status part of its patch is written afterwards (also when
    it raised `PermanentError`, as a refusal does after writing why). Errors of one
    resource are logged and do not stop the others.

    `fresh`: read each resource again first, and skip those gone. An index lags the API
    by kopf's batching window, so a pass that repeats sooner than that would start from
    the status before the previous pass's write (a retry budget spent twice, a `Failed`
    adapter tried again); and it may still hold a resource deleted while a watch was down.
    """
    bound = asyncio.Semaphore(concurrency)

    async def one(doc: Json) -> None:
        namespace, name = _name_of(doc)
        if not name or (doc.get("metadata") or {}).get("deletionTimestamp"):
            return
        patch = kopf.Patch()
        async with bound:
            try:
                if fresh:
                    found = await kube.get(hoist_ref(namespace, plural, name))
                    if found is None or (found.get("metadata") or {}).get("deletionTimestamp"):
                        return
                    doc = found
                await one_pass(kopf.Body(cast(kopf.RawBody, doc)), patch, log)
            except kopf.PermanentError:
                pass  # the status says why; a spec change tries again
            except (kopf.TemporaryError, KubeError) as exc:
                log.warning("periodic pass over %s %s/%s: %s", plural, namespace, name, exc)
            status = patch.get("status")
            if not status:
                return
            try:
                await kube.merge_patch(
                    hoist_ref(namespace, plural, name, "status"), {"status": plain(status)}
                )
            except KubeError as exc:
                if exc.not_found:
                    return  # deleted meanwhile
                log.warning("cannot write the status of %s %s/%s: %s", plural, namespace, name, exc)

    await asyncio.gather(*(one(doc) for doc in docs))


def register(
    registry: kopf.OperatorRegistry,
    jobs: Callable[[Indexed], Sequence[Job]],
    walk: PeriodicWalk,
) -> None:
    """Index Tenants, Models and LoraAdapters; at start-up give `jobs` the indexes and start
    `walk` with them; stop it at cleanup (the operator's shell stops it too)."""
    for plural in PLURALS:

        def index_body(body: kopf.Body, namespace: str | None, **_: Any) -> Json:
            return {namespace or "default": plain(body)}

        kopf.index(GROUP, VERSION, plural, id=_index_id(plural), registry=registry)(index_body)

    @kopf.on.startup(registry=registry)
    async def start_walk(**kwargs: Any) -> None:
        indexed = Indexed({p: kwargs[_index_id(p)] for p in PLURALS if _index_id(p) in kwargs})
        walk.start(jobs(indexed))

    @kopf.on.cleanup(registry=registry)
    async def stop_walk(**_: Any) -> None:
        await walk.stop()
