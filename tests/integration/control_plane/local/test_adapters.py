"""The embedded default's adapter reconciler against real HTTP sidecars on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from control_plane.api import LoraAdapter, LoraAdapterPhase
from control_plane.api.common import find_condition
from control_plane.local.adapters import LocalAdapterReconciler, LocalPod
from control_plane.lora_manager.cycle import RemovalIncompleteError
from control_plane.lora_manager.status import RetryPolicy
from tests.support.fake_sidecar import FakeSidecar, fake_sidecars


def adapter(
    name: str,
    *,
    replicas: int | str = "all",
    source: str = "/adapters/x",
    generation: int = 1,
    base: str = "base",
) -> LoraAdapter:
    return LoraAdapter.model_validate(
        {
            "metadata": {"name": name, "generation": generation},
            "spec": {"baseModel": base, "source": source, "placement": {"replicas": replicas}},
        }
    )


def pods_of(sidecars: list[FakeSidecar], model: str = "base") -> list[LocalPod]:
    return [LocalPod(f"{model}-{i}", model, s.url, True) for i, s in enumerate(sidecars)]


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_places_loads_and_reports(session: aiohttp.ClientSession) -> None:
    async with fake_sidecars(3) as sidecars:
        rec = LocalAdapterReconciler(session)
        pods = pods_of(sidecars)
        statuses = await rec.reconcile([adapter("everywhere"), adapter("one", replicas=1)], pods)
        assert statuses["everywhere"].phase is LoraAdapterPhase.READY
        assert statuses["everywhere"].ready_replicas == 3
        assert [e.pod for e in statuses["everywhere"].loaded_on] == [p.name for p in pods]
        assert statuses["one"].phase is LoraAdapterPhase.READY
        assert statuses["one"].desired_replicas == 1
        assert sum("one" in s.loaded() for s in sidecars) == 1
        # a second pass changes nothing
        before = sum(s.puts() for s in sidecars)
        again = await rec.reconcile(
            [
                adapter("everywhere").model_copy(update={"status": statuses["everywhere"]}),
                adapter("one", replicas=1).model_copy(update={"status": statuses["one"]}),
            ],
            pods,
        )
        assert sum(s.puts() for s in sidecars) == before
        assert again["everywhere"].loaded_on == statuses["everywhere"].loaded_on


async def test_drift_repaired_and_orphans_unloaded(session: aiohttp.ClientSession) -> None:
    async with fake_sidecars(2) as sidecars:
        rec = LocalAdapterReconciler(session)
        pods = pods_of(sidecars)
        first = await rec.reconcile([adapter("a")], pods)
        sidecars[1].forget()  # the engine restarted and lost its adapters
        sidecars[0].adapters["stray"] = {"name": "stray", "phase": "Loaded", "source": "/x"}
        second = await rec.reconcile([adapter("a").model_copy(update={"status": first["a"]})], pods)
        assert second["a"].phase is LoraAdapterPhase.READY
        assert sidecars[1].loaded() == {"a"}
        assert "stray" not in sidecars[0].adapters


async def test_never_on_another_base_model(session: aiohttp.ClientSession) -> None:
    async with fake_sidecars(2) as sidecars:
        rec = LocalAdapterReconciler(session)
        pods = [
            LocalPod("base-0", "base", sidecars[0].url, True),
            LocalPod("other-0", "other", sidecars[1].url, True),
        ]
        statuses = await rec.reconcile([adapter("a")], pods)
        assert statuses["a"].ready_replicas == 1
        assert sidecars[1].puts() == 0


async def test_missing_base_model_is_pending_with_condition(session: aiohttp.ClientSession) -> None:
    async with fake_sidecars(1) as sidecars:
        rec = LocalAdapterReconciler(session)
        statuses = await rec.reconcile([adapter("a", base="nope")], pods_of(sidecars))
        assert statuses["a"].phase is LoraAdapterPhase.PENDING
        ready = find_condition(statuses["a"].conditions, "Ready")
        assert ready is not None
        assert ready.reason == "BaseModelNotFound"


async def test_refused_source_fails_after_bounded_retries_with_backoff(
    session: aiohttp.ClientSession,
) -> None:
    clock = Clock()
    policy = RetryPolicy(max_failures=3, backoff_base_seconds=10, backoff_cap_seconds=60)
    async with fake_sidecars(1) as sidecars:
        sidecars[0].refuse_sources.add("/bad")
        rec = LocalAdapterReconciler(session, now=clock, policy=policy)
        pods = pods_of(sidecars)
        lora = adapter("a", source="/bad")
        status = (await rec.reconcile([lora], pods))["a"]
        assert status.failures == 1
        assert sidecars[0].puts() == 1
        # within the back-off: no new attempt
        lora = lora.model_copy(update={"status": status})
        status = (await rec.reconcile([lora], pods))["a"]
        assert sidecars[0].puts() == 1
        assert status.failures == 1
        for expected in (2, 3):
            clock.t += timedelta(seconds=policy.delay(expected - 1))
            lora = lora.model_copy(update={"status": status})
            status = (await rec.reconcile([lora], pods))["a"]
            assert status.failures == expected
        assert status.phase is LoraAdapterPhase.FAILED
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None
        assert ready.reason == "SourceNotFound"
        # Failed: no more attempts until the spec changes
        clock.t += timedelta(hours=1)
        lora = lora.model_copy(update={"status": status})
        await rec.reconcile([lora], pods)
        assert sidecars[0].puts() == 3
        fixed = adapter("a", source="/good", generation=2).model_copy(update={"status": status})
        status = (await rec.reconcile([fixed], pods))["a"]
        assert status.phase is LoraAdapterPhase.READY


async def test_unreachable_sidecar_is_reported_and_removal_waits(
    session: aiohttp.ClientSession,
) -> None:
    async with fake_sidecars(2) as sidecars:
        rec = LocalAdapterReconciler(session, sidecar_timeout_seconds=2)
        pods = pods_of(sidecars)
        first = await rec.reconcile([adapter("a")], pods)
        await sidecars[1].stop()
        status = (
            await rec.reconcile([adapter("a").model_copy(update={"status": first["a"]})], pods)
        )["a"]
        assert status.phase is LoraAdapterPhase.DEGRADED
        assert (status.ready_replicas, status.desired_replicas) == (1, 2)
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None
        assert ready.reason == "SidecarUnreachable"
        with pytest.raises(RemovalIncompleteError):
            await rec.remove(adapter("a"), pods)
        assert sidecars[0].adapters == {}
        await sidecars[1].start()
        await rec.remove(adapter("a"), pods)
        assert sidecars[1].adapters == {}
