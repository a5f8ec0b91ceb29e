"""Kubernetes discovery by list-then-watch, against the emulator (real HTTP, real watches).

The discovery interval is an hour in every test: whatever reaches routing came by watch.
Between the gateway and the API a TCP relay can drop connections or refuse new ones.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import kopf
import openai

from control_plane.api.constants import ANNOTATION_LOADED_ADAPTERS, API_VERSION, LABEL_MODEL
from control_plane.kube import KubeClient, core_ref, hoist_ref
from data_plane.gateway.discovery.informer import Informer
from data_plane.gateway.discovery.kubernetes import KubernetesDiscovery
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import RunningGateway, run_gateway
from tests.support.kube_emulator import HoistKubeEmulator, running_emulator
from tests.support.kubelet import create_with_status
from tests.support.tcp_relay import Relay, tcp_relay
from tests.support.waiting import wait_until

NS = "serving"
HOUR = 3600
# Generous for a loaded 2-core machine; a watch delivers in milliseconds.
ROUTED_WITHIN_S = 15


def pod(name: str, engine: FakeVllm, *, adapters: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {LABEL_MODEL: "llama"},
            "annotations": {ANNOTATION_LOADED_ADAPTERS: json.dumps(list(adapters))},
        },
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "ports": [{"name": "http", "containerPort": int(engine.url.rsplit(":")[-1])}],
                }
            ]
        },
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@dataclass
class World:
    emulator: HoistKubeEmulator
    kube: KubeClient
    relay: Relay
    gw: RunningGateway
    client: openai.AsyncOpenAI
    engines: tuple[FakeVllm, FakeVllm]

    @property
    def discovery(self) -> KubernetesDiscovery:
        found = self.gw.gateway.discovery
        assert isinstance(found, KubernetesDiscovery)
        return found

    @property
    def pods(self) -> Informer:
        return self.discovery.informers[(NS, "pods")]

    def replicas(self) -> list[str]:
        route = self.gw.gateway.fleet.models.get("llama")
        return [r.name for r in route.replicas] if route else []

    async def add_pod(self, name: str, engine: FakeVllm, **kw: Any) -> dict[str, Any]:
        return await create_with_status(self.kube, core_ref(NS, "pods"), pod(name, engine, **kw))

    async def complete(self, model: str = "llama") -> None:
        await self.client.completions.create(model=model, prompt="x", max_tokens=1)


@asynccontextmanager
async def world(**gateway_settings: Any) -> AsyncIterator[World]:
    """A Model `llama` with one ready pod (on engine a), and a gateway watching via a relay."""
    async with AsyncExitStack() as stack:
        emulator, url = await stack.enter_async_context(running_emulator())
        info = kopf.ConnectionInfo(server=url, token="test")
        kube = await stack.enter_async_context(KubeClient.connect(info, field_manager="test"))
        engines = (FakeVllm("llama", adapters=("sql",)), FakeVllm("llama", adapters=("sql",)))
        for engine in engines:
            await engine.start()
            stack.push_async_callback(engine.stop)
        model = {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": {"name": "llama"},
            "spec": {"source": "x", "engine": "sim"},
        }
        await kube.create(hoist_ref(NS, "models"), model)
        await create_with_status(kube, core_ref(NS, "pods"), pod("llama-a", engines[0]))
        relay = await stack.enter_async_context(tcp_relay("127.0.0.1", int(url.rsplit(":")[-1])))
        settings = {
            "discovery": "kubernetes",
            "kube_api_url": relay.url,
            "kube_namespace": NS,
            "discovery_interval_s": HOUR,
            "kube_backoff_base_s": 0.05,
            "kube_backoff_cap_s": 0.5,
            "health_probe_interval_s": 0,
            **gateway_settings,
        }
        gw = await stack.enter_async_context(run_gateway(**settings))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        )
        w = World(emulator, kube, relay, gw, client, engines)
        assert w.replicas() == ["llama-a"]
        yield w


async def test_a_pod_change_reaches_routing_without_a_poll() -> None:
    async with world() as w:
        a, b = w.engines
        await w.complete()
        assert (a.requests, b.requests) == (1, 0)

        await w.add_pod("llama-b", b)
        await w.kube.delete(core_ref(NS, "pods", "llama-a"))
        await wait_until(lambda: w.replicas() == ["llama-b"], ROUTED_WITHIN_S)
        for _ in range(3):
            await w.complete()
        assert (a.requests, b.requests) == (1, 3)

        # adapter placement: the sidecar's annotation names what is loaded on the pod
        annotations = {ANNOTATION_LOADED_ADAPTERS: json.dumps(["sql"])}
        await w.kube.merge_patch(
            core_ref(NS, "pods", "llama-b"), {"metadata": {"annotations": annotations}}
        )
        fleet = w.gw.gateway.fleet
        placed = lambda: all("sql" in r.adapters for r in fleet.models["llama"].replicas)  # noqa: E731
        await wait_until(placed, ROUTED_WITHIN_S)
        await w.complete("sql")
        assert b.requests == 4
        assert w.pods.lists == 1  # one list, then events only


async def test_a_dropped_watch_resumes_from_its_version_without_listing_again() -> None:
    async with world() as w:
        _, b = w.engines
        w.relay.refusing = True
        w.relay.sever()
        await w.add_pod("llama-b", b)  # while the gateway cannot reach the API
        refused = w.relay.accepted
        await wait_until(lambda: w.relay.accepted > refused, ROUTED_WITHIN_S)  # it retries
        w.relay.refusing = False
        await wait_until(lambda: w.replicas() == ["llama-a", "llama-b"], ROUTED_WITHIN_S)
        assert w.pods.lists == 1
        assert w.pods.resumes >= 1
        await w.kube.delete(core_ref(NS, "pods", "llama-a"))
        await wait_until(lambda: w.replicas() == ["llama-b"], ROUTED_WITHIN_S)
        await w.complete()
        assert b.requests == 1


async def test_an_expired_version_is_listed_again() -> None:
    async with world() as w:
        _, b = w.engines
        w.relay.refusing = True
        w.relay.sever()
        created = await w.add_pod("llama-b", b)
        # etcd compacted: the version the watch would resume from is gone (410)
        w.emulator.history.compact(int(created["metadata"]["resourceVersion"]))
        w.relay.refusing = False
        await wait_until(lambda: w.replicas() == ["llama-a", "llama-b"], ROUTED_WITHIN_S)
        assert w.pods.lists == 2
        assert any(
            i.last_error is not None and i.last_error.gone for i in w.discovery.informers.values()
        )


async def test_bookmarks_move_the_version_of_a_quiet_watch() -> None:
    async with world() as w:
        w.emulator.bookmark_interval = 0.2
        before = int(w.pods.version or 0)
        # writes to other kinds move the cluster's version; the pods watch sees bookmarks
        await w.kube.create(
            core_ref(NS, "configmaps"),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        )
        await wait_until(lambda: int(w.pods.version or 0) > before, ROUTED_WITHIN_S)
        assert w.pods.lists == 1


async def test_a_silent_watch_is_restarted_and_still_delivers() -> None:
    async with world(kube_watch_silence_s=0.3) as w:
        _, b = w.engines
        # no bookmarks (the emulator sends them every 5 s): each watch goes silent
        await wait_until(lambda: w.pods.restarts >= 2, ROUTED_WITHIN_S)
        await w.add_pod("llama-b", b)
        await wait_until(lambda: w.replicas() == ["llama-a", "llama-b"], ROUTED_WITHIN_S)
        assert w.pods.lists == 1
