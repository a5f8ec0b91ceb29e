"""The operator (kopf) against the Kubernetes API emulator, sidecars as real HTTP servers."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, API_VERSION, FINALIZER
from control_plane.kube import KubeError, core_ref
from tests.support.fake_sidecar import FakeSidecar, fake_sidecars
from tests.support.kube_emulator import HoistKubeEmulator, running_emulator
from tests.support.operator_harness import (
    Cluster,
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)

MODEL = {
    "apiVersion": "serving.hoist.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "base", "namespace": "default"},
    "spec": {"source": "/models/base", "engine": "sim", "replicas": 2},
}


def lora(
    name: str, *, replicas: int | str = "all", source: str = "/adapters/a", base: str = "base"
) -> dict[str, Any]:
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "LoraAdapter",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"baseModel": base, "source": source, "placement": {"replicas": replicas}},
    }


@pytest.fixture
async def env() -> AsyncIterator[tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]]]:
    async with (
        running_emulator() as (emulator, url),
        cluster_client(url) as cluster,
        fake_sidecars(3) as sidecars,
    ):
        yield emulator, url, cluster, sidecars


async def phase_of(cluster: Cluster, name: str) -> str | None:
    doc = await cluster.get("loraadapters", name)
    return ((doc or {}).get("status") or {}).get("phase")


async def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    doc = await cluster.get("loraadapters", name)
    return dict((doc or {}).get("status") or {})


async def test_create_update_delete(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
) -> None:
    _, url, cluster, sidecars = env
    await cluster.apply("models", MODEL)
    await cluster.add_pod("base-0", "base", sidecars[0])
    await cluster.add_pod("base-1", "base", sidecars[1])
    await cluster.add_pod("other-0", "other", sidecars[2])
    async with operator_running(url, fast_settings()):
        await cluster.apply("loraadapters", lora("sql", replicas=1))

        async def ready() -> bool:
            return await phase_of(cluster, "sql") == "Ready"

        await eventually(ready, what="adapter Ready")
        status = await status_of(cluster, "sql")
        assert status["readyReplicas"] == 1
        assert status["desiredReplicas"] == 1
        holder = status["loadedOn"][0]["pod"]
        assert "sql" in cluster.pods[holder].loaded()
        assert sidecars[2].puts() == 0  # never a pod of another base model

        async def annotated() -> bool:
            pod = await cluster.kube.get(core_ref("default", "pods", holder))
            annotations = ((pod or {}).get("metadata") or {}).get("annotations") or {}
            return annotations.get(ANNOTATION_LOADED_ADAPTERS) == "sql"

        await eventually(annotated, what="the pod annotated with its loaded adapters")
        doc = await cluster.get("loraadapters", "sql")
        assert doc is not None
        assert FINALIZER in doc["metadata"].get("finalizers", []) or doc["metadata"].get(
            "finalizers"
        )

        # update: everywhere
        await cluster.patch("loraadapters", "sql", {"spec": {"placement": {"replicas": "all"}}})

        async def on_both() -> bool:
            s = await status_of(cluster, "sql")
            return s.get("readyReplicas") == 2 and s.get("phase") == "Ready"

        await eventually(on_both, what="adapter on both pods")
        assert "sql" in sidecars[0].loaded()
        assert "sql" in sidecars[1].loaded()

        # delete: unloaded everywhere before the finalizer is released
        await cluster.delete("loraadapters", "sql")

        async def gone() -> bool:
            return await cluster.get("loraadapters", "sql") is None

        await eventually(gone, what="adapter deleted")
        assert not sidecars[0].loaded()
        assert not sidecars[1].loaded()


async def test_pod_restart_and_drift(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
) -> None:
    _, url, cluster, sidecars = env
    await cluster.apply("models", MODEL)
    await cluster.add_pod("base-0", "base", sidecars[0])
    await cluster.add_pod("base-1", "base", sidecars[1])
    async with operator_running(url, fast_settings()) as operator:
        await cluster.apply("loraadapters", lora("sql"))

        async def ready_on(n: int) -> bool:
            s = await status_of(cluster, "sql")
            return s.get("phase") == "Ready" and s.get("readyReplicas") == n

        await eventually(lambda: ready_on(2), what="ready on 2")

        # drift: the engine behind base-1 restarted and lost the adapter
        sidecars[1].forget()

        async def repaired() -> bool:
            return "sql" in sidecars[1].loaded()

        await eventually(repaired, what="drift repaired by the periodic walk")

        async def counted() -> bool:  # counted once the sidecar's answer is back
            labels = {"model": "base"}
            return operator.sample("hoist_operator_adapter_drift_repairs_total", labels) >= 1

        await eventually(counted, what="the repair counted")

        # pod restart: base-1 is replaced by base-2 (a fresh sidecar)
        await cluster.remove_pod("base-1")
        await cluster.add_pod("base-2", "base", sidecars[2])

        async def replaced() -> bool:
            s = await status_of(cluster, "sql")
            pods = {e["pod"] for e in s.get("loadedOn", [])}
            return pods == {"base-0", "base-2"}

        await eventually(replaced, what="adapter re-placed on the new pod")
        assert "sql" in sidecars[2].loaded()


async def test_unreachable_failing_and_missing_model(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
) -> None:
    emulator, url, cluster, sidecars = env
    await cluster.apply("models", MODEL)
    await cluster.add_pod("base-0", "base", sidecars[0])
    await cluster.add_pod("base-1", "base", sidecars[1])
    sidecars[0].refuse_sources.add("/adapters/missing")
    sidecars[1].refuse_sources.add("/adapters/missing")
    bad = lora("bad", source="ftp://nope")
    with pytest.raises(KubeError) as refused:  # the API server refuses it at the door
        await cluster.apply("loraadapters", bad)
    assert refused.value.status == 422
    assert "spec.source" in str(refused.value)
    async with operator_running(url, fast_settings()):
        # one stored before the schema said so does not stop the rest
        emulator.store_unchecked(f"{API_VERSION}/loraadapters", bad)
        await cluster.apply("loraadapters", lora("orphan", base="no-such-model"))
        await cluster.apply("loraadapters", lora("broken", source="/adapters/missing"))
        await cluster.apply("loraadapters", lora("good"))

        async def settled() -> bool:
            return (
                await phase_of(cluster, "good") == "Ready"
                and await phase_of(cluster, "broken") == "Failed"
                and await phase_of(cluster, "bad") == "Failed"
                and await phase_of(cluster, "orphan") == "Pending"
            )

        await eventually(settled, what="every adapter settled")
        broken = await status_of(cluster, "broken")
        ready = next(c for c in broken["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "SourceNotFound"
        assert broken["failures"] == 3
        puts = sidecars[0].puts("broken")
        bad_status = await status_of(cluster, "bad")
        spec_valid = next(c for c in bad_status["conditions"] if c["type"] == "SpecValid")
        assert spec_valid["status"] == "False"
        assert spec_valid["message"].startswith("spec.source")
        orphan = await status_of(cluster, "orphan")
        assert (
            next(c for c in orphan["conditions"] if c["type"] == "Ready")["reason"]
            == "BaseModelNotFound"
        )

        # unreachable sidecar: Degraded with a reason, back to Ready when it returns
        await sidecars[1].stop()

        async def degraded() -> bool:
            s = await status_of(cluster, "good")
            reasons = [c["reason"] for c in s.get("conditions", []) if c["type"] == "Ready"]
            return s.get("phase") == "Degraded" and reasons == ["SidecarUnreachable"]

        await eventually(degraded, what="Degraded while a sidecar is unreachable")
        await sidecars[1].start()

        async def recovered() -> bool:
            return await phase_of(cluster, "good") == "Ready"

        await eventually(recovered, what="Ready again")
        # Failed stays failed: no more attempts for the same spec
        assert sidecars[0].puts("broken") == puts


async def test_deletion_waits_for_an_unreachable_sidecar(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
) -> None:
    _, url, cluster, sidecars = env
    await cluster.apply("models", MODEL)
    await cluster.add_pod("base-0", "base", sidecars[0])
    await cluster.add_pod("base-1", "base", sidecars[1])
    async with operator_running(url, fast_settings()):
        await cluster.apply("loraadapters", lora("sql"))

        async def on_both() -> bool:
            return (await status_of(cluster, "sql")).get("readyReplicas") == 2

        await eventually(on_both, what="adapter on both pods")
        await sidecars[1].stop()
        await cluster.delete("loraadapters", "sql")

        async def unloaded_where_reachable() -> bool:
            return sidecars[0].deletes("sql") > 0

        await eventually(unloaded_where_reachable, what="unloaded from the reachable pod")
        held = await cluster.get("loraadapters", "sql")
        assert held is not None, "the finalizer must hold the adapter while a pod may hold it"
        assert held["metadata"].get("deletionTimestamp")
        assert "sql" in sidecars[1].loaded()

        await sidecars[1].start()

        async def gone() -> bool:
            return await cluster.get("loraadapters", "sql") is None

        await eventually(gone, what="deleted once every sidecar unloaded it")
        assert not sidecars[1].loaded()


async def test_adapters_nothing_declares_are_unloaded(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
) -> None:
    """Deleted while the operator was down, or loaded by hand: the LoRA slot is given back,
    and a declared adapter on the same pod is left alone."""
    _, url, cluster, sidecars = env
    await cluster.apply("models", MODEL)
    await cluster.add_pod("base-0", "base", sidecars[0])
    async with operator_running(url, fast_settings()) as operator:
        await cluster.apply("loraadapters", lora("sql"))
        await eventually(lambda: _phase_is(cluster, "sql", "Ready"), what="sql Ready")
        # an adapter no LoraAdapter declares appears on base-0's sidecar
        sidecars[0].adapters["stray"] = {"name": "stray", "phase": "Loaded", "source": "/x"}

        async def swept() -> bool:
            # the sidecar forgets it when it answers the DELETE; the operator counts the
            # repair once it has read that answer: wait for both
            pod = await cluster.kube.get(core_ref("default", "pods", "base-0"))
            annotations = ((pod or {}).get("metadata") or {}).get("annotations") or {}
            repairs = operator.sample(
                "hoist_operator_adapter_drift_repairs_total", {"model": "base"}
            )
            return (
                sidecars[0].loaded() == {"sql"}
                and annotations.get(ANNOTATION_LOADED_ADAPTERS) == "sql"
                and repairs >= 1
            )

        await eventually(swept, what="the undeclared adapter unloaded, unannotated and counted")
        assert sidecars[0].deletes("stray") >= 1
        assert sidecars[0].deletes("sql") == 0


async def _phase_is(cluster: Cluster, name: str, phase: str) -> bool:
    return await phase_of(cluster, name) == phase


SECRET_KEY_ID = "AKIASECRETREFTEST01"
SECRET_VALUE = "s3cr3t-from-the-secret-7f3a"


async def test_credentials_come_from_the_named_secret_and_are_never_shown(
    env: tuple[HoistKubeEmulator, str, Cluster, list[FakeSidecar]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, url, cluster, sidecars = env
    await cluster.kube.create(
        core_ref("default", "secrets"),
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "store-creds", "namespace": "default"},
         "data": {"AWS_ACCESS_KEY_ID": base64.b64encode(SECRET_KEY_ID.encode()).decode(),
                  "AWS_SECRET_ACCESS_KEY": base64.b64encode(SECRET_VALUE.encode()).decode(),
                  "unrelated": base64.b64encode(b"not-sent").decode()}},
    )  # fmt: skip
    await cluster.apply("models", {**MODEL, "spec": {**MODEL["spec"], "replicas": 1}})
    await cluster.add_pod("base-0", "base", sidecars[0])
    s3 = "s3://adapters/team-a/sql.tar.gz"
    signed = lora("signed", source=s3)
    signed["spec"]["credentialsSecretRef"] = {"name": "store-creds"}
    missing = lora("missing-secret", source=s3)
    missing["spec"]["credentialsSecretRef"] = {"name": "no-such-secret"}
    borrowed = lora("borrowed", source=s3)  # a tenant naming a Secret not labelled as its own
    borrowed["spec"] |= {"credentialsSecretRef": {"name": "store-creds"}, "tenant": "team-b"}
    async with operator_running(url, fast_settings()):
        await cluster.apply("loraadapters", signed)
        await cluster.apply("loraadapters", lora("ambient", source=s3))
        await cluster.apply("loraadapters", missing)
        await cluster.apply("loraadapters", borrowed)

        async def loaded() -> bool:
            return all([await phase_of(cluster, n) == "Ready" for n in ("signed", "ambient")])

        await eventually(loaded, what="both adapters Ready")

        async def refused(name: str, reason: str) -> bool:
            conditions = (await status_of(cluster, name)).get("conditions") or []
            return any(c.get("reason") == reason for c in conditions)

        await eventually(
            lambda: refused("missing-secret", "CredentialsNotFound"),
            what="the missing Secret reported on the adapter",
        )
        await eventually(
            lambda: refused("borrowed", "CredentialsNotAllowed"),
            what="another's Secret refused for a tenant's adapter",
        )
        names = ("signed", "ambient", "missing-secret", "borrowed")
        statuses = [await status_of(cluster, n) for n in names]
    assert sidecars[0].credentials["signed"] == {
        "AWS_ACCESS_KEY_ID": SECRET_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_VALUE,
    }
    assert sidecars[0].credentials["ambient"] is None
    assert sidecars[0].puts("missing-secret") == 0
    assert sidecars[0].puts("borrowed") == 0
    message = next(
        c["message"] for c in statuses[2]["conditions"] if c["reason"] == "CredentialsNotFound"
    )
    assert "no-such-secret" in message
    events = await cluster.kube.list(core_ref("default", "events"))
    shown = [repr(statuses), repr(events), caplog.text]
    for text in shown:
        assert SECRET_VALUE not in text
        assert SECRET_KEY_ID not in text
