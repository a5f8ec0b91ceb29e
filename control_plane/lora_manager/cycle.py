"""One reconcile pass for adapters: observe the sidecars, plan (pure), apply, status (pure).

Both substrates drive adapters through this class: the kopf handlers with the pods they
list from the API server, the embedded default with the replicas it supervises. Effects
are idempotent (a sidecar treats "already loaded" and "already gone" as success), so a
pass may be repeated or interrupted at any point.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.lora_manager.credentials import CredentialsError, CredentialsReader
from control_plane.lora_manager.placement import PodRef, PodView, SidecarPhase
from control_plane.lora_manager.plan import (
    AdapterPlan,
    RemovalPlan,
    assume_placed,
    orphans,
    plan_adapter,
    plan_removal,
)
from control_plane.lora_manager.sidecar_client import (
    SidecarClient,
    SidecarRefusedError,
    SidecarUnreachableError,
)
from control_plane.lora_manager.status import (
    PassResult,
    Refusal,
    RetryPolicy,
    is_failed,
    next_status,
)

log = logging.getLogger(__name__)


class AdapterMetrics(Protocol):
    """What the cycle reports; the operator backs it with Prometheus."""

    def sidecar_call(self, action: str, result: str) -> None: ...
    def drift_repaired(self, model: str, count: int) -> None: ...


class NoMetrics:
    def sidecar_call(self, action: str, result: str) -> None:
        pass

    def drift_repaired(self, model: str, count: int) -> None:
        pass


class RemovalIncompleteError(Exception):
    """Some pod could not be asked or did not unload: try the removal again later."""


@dataclass(frozen=True)
class PassOutcome:
    status: LoraAdapterStatus
    plan: AdapterPlan | None
    retry_after: float | None
    """Seconds after which another pass is worthwhile (still loading, back-off, an
    unreachable sidecar), or None when the adapter is settled (ready or failed)."""


@dataclass
class _Applied:
    loaded: dict[str, str | None] = field(default_factory=dict)
    refusal: Refusal | None = None
    unreachable: list[str] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AdapterCycle:
    def __init__(
        self,
        client: SidecarClient,
        *,
        policy: RetryPolicy | None = None,
        metrics: AdapterMetrics | None = None,
        now: Callable[[], datetime] = _utcnow,
        poll_seconds: float = 5.0,
        credentials: CredentialsReader | None = None,
    ) -> None:
        """`credentials` reads the Secrets adapters name (Kubernetes); None: a
        `credentialsSecretRef` is not read and the sidecars use their own credentials."""
        self._client = client
        self._credentials = credentials
        self._policy = policy or RetryPolicy()
        self._metrics: AdapterMetrics = metrics or NoMetrics()
        self._now = now
        self._poll = poll_seconds
        self._not_before: dict[tuple[str, str], datetime] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def observe(self, pods: Sequence[PodRef]) -> list[PodView]:
        """Ask every pod's sidecar what it holds; an unreachable one has `adapters=None`."""

        async def one(pod: PodRef) -> PodView:
            try:
                adapters = await self._client.adapters(pod.sidecar_url)
            except SidecarUnreachableError as exc:
                if pod.ready:
                    log.warning("sidecar of %s unreachable: %s", pod.name, exc)
                self._metrics.sidecar_call("list", "unreachable")
                return PodView(pod.name, pod.model, pod.ready, None, pod.in_flight)
            return PodView(pod.name, pod.model, pod.ready, adapters, pod.in_flight)

        return list(await asyncio.gather(*(one(p) for p in pods)))

    def now(self) -> datetime:
        return self._now()

    def lock(self, adapter: LoraAdapter) -> asyncio.Lock:
        key = (adapter.metadata.namespace, adapter.metadata.name)
        return self._locks.setdefault(key, asyncio.Lock())

    async def reconcile(
        self,
        adapter: LoraAdapter,
        pods: Sequence[PodRef],
        views: Sequence[PodView],
        *,
        base_model_found: bool,
    ) -> PassOutcome:
        """Place, load and unload one adapter; its new status.

        `views` are `observe(pods)` (possibly adjusted by earlier adapters of the same
        pass with `assume_placed`).
        """
        meta, spec = adapter.metadata, adapter.spec
        key = (meta.namespace, meta.name)
        gen = meta.generation
        previous = adapter.status
        if is_failed(previous, gen):
            assert previous is not None
            return PassOutcome(previous, None, None)
        now = self._now()
        if previous is None or previous.observed_generation != gen:
            self._not_before.pop(key, None)
        retry_ok = now >= self._not_before.get(key, now)
        plan = plan_adapter(
            meta.name,
            spec,
            views,
            previously_loaded={entry.pod for entry in (previous.loaded_on if previous else [])},
            retry_failed=retry_ok,
        )
        if not base_model_found:
            plan = AdapterPlan(meta.name, (), (), plan.unloads, ())
        elif not retry_ok:  # backing off after a refusal: observe, load nothing
            plan = AdapterPlan(meta.name, plan.targets, (), plan.unloads, ())
        applied = await self._apply(adapter, plan, pods, views)
        result = PassResult(
            generation=gen,
            placement=spec.placement,
            base_model_found=base_model_found,
            candidates=sum(1 for v in views if v.model == spec.base_model and v.ready),
            targets=plan.targets,
            loaded=applied.loaded,
            refusal=applied.refusal,
            unreachable=tuple(sorted(set(applied.unreachable))),
        )
        status = next_status(previous, result, now=now, policy=self._policy)
        retry_after: float | None = None
        if applied.refusal is not None:
            delay = self._policy.delay(status.failures)
            self._not_before[key] = now + timedelta(seconds=delay)
            retry_after = delay
        elif status.ready_replicas < status.desired_replicas or result.unreachable:
            retry_after = self._poll
        if is_failed(status, gen):
            retry_after = None
        return PassOutcome(status, plan, retry_after)

    async def _apply(
        self,
        adapter: LoraAdapter,
        plan: AdapterPlan,
        pods: Sequence[PodRef],
        views: Sequence[PodView],
    ) -> _Applied:
        """Send the plan's loads and unloads to the sidecars, concurrently."""
        meta, spec = adapter.metadata, adapter.spec
        urls = {p.name: p.sidecar_url for p in pods}
        by_name = {v.name: v for v in views}
        out = _Applied(
            unreachable=[
                v.name for v in views if v.model == spec.base_model and v.ready and not v.reachable
            ]
        )
        for pod in plan.targets:
            entry = (by_name[pod].adapters or {}).get(meta.name)
            if pod not in plan.loads and entry is not None and entry.phase is SidecarPhase.LOADED:
                out.loaded[pod] = entry.sha256

        secret: dict[str, str] | None = None
        ref = spec.credentials_secret_ref
        if plan.loads and ref is not None and self._credentials is not None:
            try:
                secret = await self._credentials.read(meta.namespace, ref.name, spec.tenant)
            except CredentialsError as exc:
                log.warning("%s: %s", meta.name, exc.message)
                out.refusal = Refusal("the LoRA manager", exc.reason, exc.message)
                plan = replace(plan, loads=())

        async def load(pod: str) -> None:
            try:
                report = await self._client.load(
                    urls[pod], meta.name, spec.source, spec.sha256, spec.tenant, credentials=secret
                )
            except SidecarRefusedError as exc:
                self._metrics.sidecar_call("load", "refused")
                log.warning("%s refused %s: %s", pod, meta.name, exc)
                out.refusal = out.refusal or Refusal(pod, exc.reason, exc.message)
                return
            except SidecarUnreachableError as exc:
                self._metrics.sidecar_call("load", "unreachable")
                log.warning("could not load %s on %s: %s", meta.name, pod, exc)
                out.unreachable.append(pod)
                return
            self._metrics.sidecar_call("load", "success")
            if report.phase is SidecarPhase.LOADED:
                out.loaded[pod] = report.sha256

        async def unload(pod: str) -> None:
            try:
                await self._client.unload(urls[pod], meta.name)
            except (SidecarRefusedError, SidecarUnreachableError) as exc:
                self._metrics.sidecar_call("unload", "failure")
                log.warning("could not unload %s from %s: %s", meta.name, pod, exc)
                return
            self._metrics.sidecar_call("unload", "success")

        await asyncio.gather(*(load(p) for p in plan.loads), *(unload(p) for p in plan.unloads))
        if plan.drift:
            self._metrics.drift_repaired(spec.base_model, len(plan.drift))
            log.info("%s: repairing drift on %s", meta.name, ", ".join(plan.drift))
        return out

    async def unload_orphans(
        self,
        pods: Sequence[PodRef],
        views: Sequence[PodView],
        declared: Mapping[str, Collection[str]],
    ) -> dict[str, tuple[str, ...]]:
        """Unload from each pod the adapters that no declaration puts on its model (deleted
        while the operator was away, loaded by hand); what was unloaded, by pod.

        `declared` maps a base model to its adapters' names. Read it after `views`: an
        adapter is declared before anything loads it, so one declared later than the
        listing cannot be mistaken for an orphan.
        """
        urls = {p.name: p.sidecar_url for p in pods}
        unloaded: dict[str, list[str]] = {}

        async def unload(view: PodView, name: str) -> None:
            try:
                await self._client.unload(urls[view.name], name)
            except (SidecarRefusedError, SidecarUnreachableError) as exc:
                self._metrics.sidecar_call("unload", "failure")
                log.warning("could not unload orphan %s from %s: %s", name, view.name, exc)
                return
            self._metrics.sidecar_call("unload", "success")
            self._metrics.drift_repaired(view.model, 1)
            unloaded.setdefault(view.name, []).append(name)

        work = [(view, name) for view in views for name in orphans(declared, view)]
        await asyncio.gather(*(unload(view, name) for view, name in work))
        if unloaded:
            log.info(
                "unloaded adapters nothing declares: %s",
                "; ".join(f"{pod}: {', '.join(sorted(n))}" for pod, n in sorted(unloaded.items())),
            )
        return {pod: tuple(sorted(names)) for pod, names in unloaded.items()}

    async def remove(self, namespace: str, name: str, pods: Sequence[PodRef]) -> None:
        """Unload the adapter from every pod.

        Raises `RemovalIncompleteError` if some pod may still hold it.
        """
        views = await self.observe(pods)
        plan: RemovalPlan = plan_removal(name, views)
        urls = {p.name: p.sidecar_url for p in pods}
        failed: list[str] = list(plan.unknown)

        async def unload(pod: str) -> None:
            try:
                await self._client.unload(urls[pod], name)
            except (SidecarRefusedError, SidecarUnreachableError) as exc:
                self._metrics.sidecar_call("unload", "failure")
                log.warning("could not unload %s from %s: %s", name, pod, exc)
                failed.append(pod)
                return
            self._metrics.sidecar_call("unload", "success")

        await asyncio.gather(*(unload(p) for p in plan.unloads))
        self._not_before.pop((namespace, name), None)
        lock = self._locks.get((namespace, name))
        if lock is not None and not lock.locked():
            del self._locks[(namespace, name)]
        if failed:
            raise RemovalIncompleteError(f"could not unload from {', '.join(sorted(failed))}")


__all__ = ["AdapterCycle", "PassOutcome", "PodRef", "RemovalIncompleteError", "assume_placed"]
