"""The tenant manager against the Kubernetes API emulator: Tenants, key Secrets, status."""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import orjson
import pytest

from control_plane.api.constants import API_VERSION
from control_plane.kube import KubeError, core_ref
from tests.support.kube_emulator import HoistKubeEmulator, running_emulator
from tests.support.operator_harness import (
    NS,
    Cluster,
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)

KEY_A = "sk-tenant-alpha-0123456789"
KEY_B = "sk-tenant-bravo-9876543210"
API = "serving.hoist.dev/v1alpha1"


def tenant_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name, "namespace": NS},
            "spec": spec}  # fmt: skip


def model_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Model", "metadata": {"name": name, "namespace": NS},
            "spec": {"source": "/m", "engine": "sim", "replicas": 0, **spec}}  # fmt: skip


async def add_secret(cluster: Cluster, name: str, **entries: str) -> None:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in entries.items()}
    await cluster.kube.create(
        core_ref(NS, "secrets"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
         "type": "Opaque", "data": data},
    )  # fmt: skip


async def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    doc = await cluster.get("tenants", name)
    return dict((doc or {}).get("status") or {})


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


async def wait_reason(cluster: Cluster, name: str, reason: str) -> dict[str, Any]:
    async def reached() -> bool:
        return ready_condition(await status_of(cluster, name)).get("reason") == reason

    await eventually(reached, within=20, what=f"Tenant {name} Ready reason {reason}")
    return await status_of(cluster, name)


def stored_text(emulator: HoistKubeEmulator) -> bytes:
    """Every object the emulator holds except the Secrets (statuses, events...)."""
    return b"\n".join(
        orjson.dumps(obj.raw, default=str)
        for (resource, _, _), obj in list(emulator.objects.items())
        if resource is None or resource.plural != "secrets"
    )


async def test_good_tenant_is_ready_with_counts_and_resolved_models(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hashed_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    async with running_emulator() as (emulator, url), cluster_client(url) as cluster:
        await cluster.apply("models", model_doc("llama"))
        await cluster.apply("models", model_doc("llama-private", tenant="team-a"))
        await cluster.apply("models", model_doc("other-private", tenant="team-b"))
        await cluster.apply("models", model_doc("mistral"))
        await add_secret(cluster, "team-a-keys", ci=KEY_A, dev=f"sha256:{hashed_b}")
        await cluster.apply(
            "tenants",
            tenant_doc("team-a", allowedModels=["llama", "other-*"],
                       apiKeysSecret={"name": "team-a-keys"}),
        )  # fmt: skip
        async with operator_running(url, fast_settings()) as operator:
            status = await wait_reason(cluster, "team-a", "TenantReady")
            assert status["phase"] == "Ready"
            assert status["keys"] == 2
            # its own model whatever allowedModels say; never another tenant's own
            assert status["allowedModels"] == ["llama", "llama-private"]
            assert status["observedGeneration"] == 1
            spec_valid = next(c for c in status["conditions"] if c["type"] == "SpecValid")
            assert spec_valid["status"] == "True"
            assert ready_condition(status)["status"] == "True"

            async def counted() -> bool:
                labels = {"kind": "Tenant", "result": "ok"}
                return operator.sample("hoist_operator_reconciles_total", labels) > 0

            await eventually(counted, within=10, what="a Tenant pass counted")
    everything = stored_text(emulator) + caplog.text.encode()
    assert b"TenantReady" in everything  # the search below looks where it should
    for secret in (KEY_A, KEY_B, hashed_b):
        assert secret.encode() not in everything


async def test_missing_secret_then_created_recovers() -> None:
    async with running_emulator() as (_, url), cluster_client(url) as cluster:
        await cluster.apply("tenants", tenant_doc("late", apiKeysSecret={"name": "late-keys"}))
        async with operator_running(url, fast_settings()):
            status = await wait_reason(cluster, "late", "SecretNotFound")
            assert status["phase"] == "NotReady"
            assert ready_condition(status)["status"] == "False"
            assert "late-keys" in ready_condition(status)["message"]
            await add_secret(cluster, "late-keys", ci=KEY_A)  # the timer notices
            status = await wait_reason(cluster, "late", "TenantReady")
            assert status["phase"] == "Ready"
            assert status["keys"] == 1


# name -> (spec, Secret entries, reason, phase, part of the message)
BAD: dict[str, tuple[dict[str, Any], dict[str, str], str, str, str]] = {
    "unknown-model": ({"allowedModels": ["llama-*", "nope"]}, {"k": KEY_A}, "UnknownModel",
                      "NotReady", 'spec.allowedModels[1]: no Model or LoraAdapter named "nope"'),
    "malformed-key": ({}, {"k": "short"}, "InvalidKey", "NotReady",
                      'entry "k" is not a valid key'),
    "malformed-digest": ({}, {"k": "sha256:abc"}, "InvalidKey", "NotReady", "64 hex digits"),
    "empty-secret": ({}, {}, "NoKeys", "NotReady", "has no entries"),
    "weight-zero": ({"weight": 0}, {"k": KEY_B}, "InvalidSpec", "Failed", "spec.weight"),
    "tokens-below-requests": ({"quotas": {"requestsPerMinute": 100, "tokensPerMinute": 10}},
                              {"k": "sk-tokens-below-1"}, "InvalidQuota", "Failed",
                              "spec.quotas.tokensPerMinute"),
    "negative-quota": ({"quotas": {"concurrentRequests": -1}}, {"k": "sk-negative-quota-1"},
                       "InvalidQuota", "Failed", "spec.quotas.concurrentRequests"),
}  # fmt: skip


# What the CRD's schema refuses at the door (422); a cluster may still hold such Tenants,
# stored before the schema said so.
REFUSED_BY_SCHEMA = {"weight-zero", "negative-quota"}


async def add_tenant(cluster: Cluster, emulator: HoistKubeEmulator, doc: dict[str, Any]) -> bool:
    """Create a Tenant through the API; one the API refuses is stored as an older schema
    admitted it. Whether the API refused it."""
    try:
        await cluster.apply("tenants", doc)
    except KubeError as exc:
        if exc.status != 422:
            raise
        emulator.store_unchecked(f"{API_VERSION}/tenants", doc)
        return True
    return False


async def test_bad_tenants_get_precise_conditions_and_do_not_stop_the_others() -> None:
    async with running_emulator() as (emulator, url), cluster_client(url) as cluster:
        refused = set()
        for name, (spec, secret, *_) in BAD.items():
            await add_secret(cluster, f"{name}-keys", **secret)
            doc = tenant_doc(name, apiKeysSecret={"name": f"{name}-keys"}, **spec)
            if await add_tenant(cluster, emulator, doc):
                refused.add(name)
        assert refused == REFUSED_BY_SCHEMA
        await add_secret(cluster, "good-keys", k="sk-good-tenant-1")
        await cluster.apply("tenants", tenant_doc("good", apiKeysSecret={"name": "good-keys"}))
        # a Secret the operator's RBAC does not cover
        emulator[f"get /api/v1/namespaces/{NS}/secrets/locked"] << 403
        await cluster.apply("tenants", tenant_doc("forbidden", apiKeysSecret={"name": "locked"}))
        async with operator_running(url, fast_settings()):
            for name, (_, _, reason, phase, in_message) in BAD.items():
                status = await wait_reason(cluster, name, reason)
                assert status["phase"] == phase, name
                assert in_message in ready_condition(status)["message"], name
                assert status["observedGeneration"] == 1
            await wait_reason(cluster, "good", "TenantReady")
            status = await wait_reason(cluster, "forbidden", "SecretForbidden")
            assert "RBAC" in ready_condition(status)["message"]
        assert KEY_A.encode() not in stored_text(emulator)


async def test_duplicate_key_across_tenants_is_reported_on_both() -> None:
    async with running_emulator() as (emulator, url), cluster_client(url) as cluster:
        await add_secret(cluster, "a-keys", ci=KEY_A)
        await add_secret(cluster, "b-keys", mine=KEY_B, shared=KEY_A)
        await cluster.apply("tenants", tenant_doc("team-a", apiKeysSecret={"name": "a-keys"}))
        await cluster.apply("tenants", tenant_doc("team-b", apiKeysSecret={"name": "b-keys"}))
        async with operator_running(url, fast_settings()):
            a = await wait_reason(cluster, "team-a", "DuplicateKey")
            b = await wait_reason(cluster, "team-b", "DuplicateKey")
            assert 'Tenant "team-b"' in ready_condition(a)["message"]
            assert 'entry "shared"' in ready_condition(b)["message"]
            # b rotates the shared key out: both recover
            await cluster.kube.merge_patch(
                core_ref(NS, "secrets", "b-keys"), {"data": {"shared": None}}
            )
            await wait_reason(cluster, "team-a", "TenantReady")
            b = await wait_reason(cluster, "team-b", "TenantReady")
            assert b["keys"] == 1
        assert KEY_A.encode() not in stored_text(emulator)


async def test_fixing_an_invalid_spec_makes_it_ready() -> None:
    async with running_emulator() as (emulator, url), cluster_client(url) as cluster:
        await add_secret(cluster, "keys", ci=KEY_A)
        doc = tenant_doc("t", weight=0, apiKeysSecret={"name": "keys"})
        assert await add_tenant(cluster, emulator, doc)
        async with operator_running(url, fast_settings()):
            await wait_reason(cluster, "t", "InvalidSpec")
            await cluster.patch("tenants", "t", {"spec": {"weight": 3}})
            status = await wait_reason(cluster, "t", "TenantReady")
            assert status["observedGeneration"] == 2
            assert status["phase"] == "Ready"


async def test_a_model_created_or_deleted_rechecks_tenants_at_once() -> None:
    """No timer here (a minute away): the Model's own events re-check the Tenants."""
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        operator_running(url, fast_settings(tenant_resync_seconds=60)),
    ):
        await add_secret(cluster, "keys", ci=KEY_A)
        await cluster.apply(
            "tenants", tenant_doc("t", allowedModels=["later"], apiKeysSecret={"name": "keys"})
        )
        # (against the emulator kopf's first pass on a new object may conflict with its own
        # finalizer patch and wait for the next event; any Model's creation is one)
        await cluster.apply("models", model_doc("unrelated"))
        await wait_reason(cluster, "t", "UnknownModel")
        await cluster.apply("models", model_doc("later"))
        status = await wait_reason(cluster, "t", "TenantReady")
        assert status["allowedModels"] == ["later"]
        await cluster.delete("models", "later")
        await wait_reason(cluster, "t", "UnknownModel")
