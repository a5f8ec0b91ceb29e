"""The LoRA manager's tenant boundary: a source the policy refuses, or a Model's name, is
never placed; the adapter is `Failed` with `SpecValid=False` and a reason in policy terms.

Addresses are literals (nothing is resolved or fetched); sidecars are real HTTP servers on
127.0.0.1 that record every PUT.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_sidecar import fake_sidecars
from tests.support.kube_emulator import running_emulator
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
    "spec": {"source": "/models/base", "engine": "sim", "replicas": 1},
}
TENANT = {
    "apiVersion": "serving.hoist.dev/v1alpha1",
    "kind": "Tenant",
    "metadata": {"name": "team-a", "namespace": "default"},
    "spec": {"adapterSources": {"schemes": ["s3"]}},
}


def lora(name: str, source: str, tenant: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"baseModel": "base", "source": source}
    if tenant is not None:
        spec["tenant"] = tenant
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "LoraAdapter",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


async def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    doc = await cluster.get("loraadapters", name)
    return dict((doc or {}).get("status") or {})


def _spec_valid(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == "SpecValid")


async def test_refused_sources_and_names_are_never_placed() -> None:
    refused = {
        "copy": ("/var/lib/hoist/adapters/other/0123", "SourceNotAllowed", "install directory"),
        "any-path": ("/etc/secrets", "SourceNotAllowed", "outside the directories"),
        "loopback": ("https://127.0.0.1:8079/v1/state", "SourceNotAllowed", "loopback"),
        "metadata": ("https://169.254.169.254/latest/", "SourceNotAllowed", "link-local"),
        "plain-http": ("http://93.184.216.34/a.tar", "SourceNotAllowed", "not allowed"),
        "base": ("s3://bucket/base.tar", "NameTaken", "a Model is named"),
        "a-https": ("https://93.184.216.34/a.tar", "SourceNotAllowed", "not allowed"),
    }
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(1) as sidecars,
    ):
        await cluster.apply("models", MODEL)
        await cluster.apply("tenants", TENANT)
        await cluster.add_pod("base-0", "base", sidecars[0])
        # the operator's own policy: the default (s3, https to public addresses, no paths)
        async with operator_running(url, fast_settings(adapter_source_roots=[])):
            for name, (source, _, _) in refused.items():
                tenant = "team-a" if name.startswith("a-") else None
                await cluster.apply("loraadapters", lora(name, source, tenant))
            await cluster.apply("loraadapters", lora("a-s3", "s3://bucket/a.tar", "team-a"))
            await cluster.apply("loraadapters", lora("public", "https://93.184.216.34/p.tar"))

            async def settled() -> bool:
                phases = [(await _status(cluster, n)).get("phase") for n in refused]
                ready = [(await _status(cluster, n)).get("phase") for n in ("a-s3", "public")]
                return phases == ["Failed"] * len(refused) and ready == ["Ready", "Ready"]

            await eventually(settled, what="every adapter settled")
            for name, (_, reason, words) in refused.items():
                condition = _spec_valid(await _status(cluster, name))
                assert condition["status"] == "False"
                assert condition["reason"] == reason, name
                assert words in condition["message"], name
        assert sorted(sidecars[0].loaded()) == ["a-s3", "public"]
        for name in refused:
            assert sidecars[0].puts(name) == 0, name


async def test_a_refusal_that_no_longer_holds_is_lifted() -> None:
    """Admission refusals depend on things outside the adapter's spec: its Tenant's
    `adapterSources` and the Models of the namespace. When those change, the next
    periodic pass admits the adapter and places it, without a spec change."""
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(1) as sidecars,
    ):
        await cluster.apply("models", MODEL)
        await cluster.apply("tenants", TENANT)  # team-a: s3 only
        await cluster.apply(
            "models", {**MODEL, "metadata": {"name": "twin", "namespace": "default"}}
        )
        await cluster.add_pod("base-0", "base", sidecars[0])
        async with operator_running(url, fast_settings(adapter_source_roots=["/adapters"])):
            await cluster.apply("loraadapters", lora("a-local", "/adapters/a", "team-a"))
            await cluster.apply("loraadapters", lora("twin", "/adapters/t"))

            async def refused() -> bool:
                reasons = [
                    (await _status(cluster, n)).get("conditions") and
                    _spec_valid(await _status(cluster, n)).get("reason")
                    for n in ("a-local", "twin")
                ]  # fmt: skip
                return reasons == ["SourceNotAllowed", "NameTaken"]

            await eventually(refused, what="both adapters refused")
            generations = {
                n: ((await cluster.get("loraadapters", n)) or {})["metadata"]["generation"]
                for n in ("a-local", "twin")
            }
            # the tenant's policy now allows its local directory; the Model "twin" goes
            await cluster.patch(
                "tenants",
                "team-a",
                {"spec": {"adapterSources": {"schemes": ["s3", "file"],
                                             "localRoots": ["/adapters"]}}},
            )  # fmt: skip
            await cluster.delete("models", "twin")

            async def admitted() -> bool:
                phases = [(await _status(cluster, n)).get("phase") for n in ("a-local", "twin")]
                return phases == ["Ready", "Ready"]

            await eventually(admitted, what="both adapters admitted and Ready")
            for name, generation in generations.items():
                doc = await cluster.get("loraadapters", name)
                assert doc is not None and doc["metadata"]["generation"] == generation
                condition = _spec_valid(doc["status"])
                assert (condition["status"], condition["reason"]) == ("True", "Valid"), name
        assert sorted(sidecars[0].loaded()) == ["a-local", "twin"]
