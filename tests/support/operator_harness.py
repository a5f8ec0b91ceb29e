"""Run the real operator (`control_plane.operator.app.run`) inside a test's own task,
against the Kubernetes API emulator, with fake sidecars as pods."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import CollectorRegistry

from control_plane.api.constants import (
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    MANAGED_BY,
)
from control_plane.kube import KubeClient, core_ref, hoist_ref
from control_plane.operator.app import run
from control_plane.operator.settings import OperatorSettings
from tests.support.fake_sidecar import FakeSidecar
from tests.support.kubelet import create_with_status

NS = "default"


def fast_settings(**overrides: Any) -> OperatorSettings:
    base: dict[str, Any] = {
        "namespaces": [],
        "adapter_resync_seconds": 0.3,
        "model_resync_seconds": 0.5,
        "tenant_resync_seconds": 0.5,
        "sidecar_timeout_seconds": 2,
        "max_load_failures": 3,
        "backoff_base_seconds": 0.2,
        "backoff_cap_seconds": 1,
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        "standalone": True,
        # the tests' adapters are paths on the fake sidecars' disk; the policy itself has
        # tests of its own (test_lora_admission.py)
        "adapter_source_roots": ["/"],
    }
    base.update(overrides)
    return OperatorSettings(**base)


@dataclass
class RunningOperator:
    task: asyncio.Task[None]
    stop: asyncio.Event
    metrics: CollectorRegistry

    async def shutdown(self) -> None:
        self.stop.set()
        try:
            # kopf's own exit: handlers in progress, the walk's last pass, then kopf's
            # cleanup; cancelling it earlier skips the cleanup and leaks its API sessions.
            await asyncio.wait_for(asyncio.shield(self.task), timeout=30)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.get_sample_value(name, labels or {}) or 0.0


@contextlib.asynccontextmanager
async def operator_running(
    server: str, settings: OperatorSettings
) -> AsyncIterator[RunningOperator]:
    stop, ready = asyncio.Event(), asyncio.Event()
    registry = CollectorRegistry()
    task = asyncio.create_task(
        run(
            settings,
            connection=kopf.ConnectionInfo(server=server, token="test"),
            metrics_registry=registry,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    running = RunningOperator(task, stop, registry)
    try:
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises what stopped the operator
            raise AssertionError("the operator stopped before it was ready")
        if not ready.is_set():
            raise AssertionError("the operator did not get ready")
        yield running
    finally:
        await running.shutdown()


@dataclass
class Cluster:
    """The test's hands on the emulator: create resources and play the kubelet."""

    kube: KubeClient
    pods: dict[str, FakeSidecar] = field(default_factory=dict)

    async def apply(self, plural: str, doc: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.create(hoist_ref(NS, plural), doc)

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get(hoist_ref(NS, plural, name))

    async def patch(self, plural: str, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.merge_patch(hoist_ref(NS, plural, name), doc)

    async def delete(self, plural: str, name: str) -> None:
        await self.kube.delete(hoist_ref(NS, plural, name))

    async def add_pod(
        self, name: str, model: str, sidecar: FakeSidecar, *, ready: bool = True
    ) -> None:
        """A running inference pod of `model` whose sidecar is `sidecar`."""
        self.pods[name] = sidecar
        await create_with_status(
            self.kube,
            core_ref(NS, "pods"),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "labels": {
                        LABEL_MANAGED_BY: MANAGED_BY,
                        LABEL_MODEL: model,
                        LABEL_ROLE: "inference",
                    },
                },
                "spec": {
                    "containers": [
                        {"name": "engine", "image": "x"},
                        {
                            "name": "sidecar",
                            "image": "x",
                            "ports": [{"name": "sidecar", "containerPort": sidecar.port}],
                        },
                    ]
                },
                "status": {
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                },
            },
        )

    async def remove_pod(self, name: str) -> None:
        await self.kube.delete(core_ref(NS, "pods", name))
        self.pods.pop(name, None)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 45.0, what: str = "condition"
) -> None:
    """Poll `check` until true; fail with `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def cluster_client(server: str) -> AsyncIterator[Cluster]:
    info = kopf.ConnectionInfo(server=server, token="test")
    async with KubeClient.connect(info, field_manager="hoist-test") as kube:
        yield Cluster(kube)


@contextlib.asynccontextmanager
async def operator_in_thread(
    server: str, settings: OperatorSettings
) -> AsyncIterator[RunningOperator]:
    """The operator in its own thread and event loop, as a separate replica would be.

    kopf assumes it owns its event loop (on exit it stops the tasks that appeared while it
    ran), so two replicas in one test need two loops.
    """
    registry = CollectorRegistry()
    started: asyncio.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = (
        asyncio.get_running_loop().create_future()
    )
    caller = asyncio.get_running_loop()
    errors: list[BaseException] = []

    async def main() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            run(
                settings,
                connection=kopf.ConnectionInfo(server=server, token="test"),
                metrics_registry=registry,
                stop_flag=stop,
                ready_flag=ready,
            )
        )
        await ready.wait()
        caller.call_soon_threadsafe(started.set_result, (asyncio.get_running_loop(), stop))
        await task

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
            if not started.done():
                caller.call_soon_threadsafe(started.set_exception, exc)

    thread = threading.Thread(target=target, name="operator-replica", daemon=True)
    thread.start()
    loop, stop = await asyncio.wait_for(started, timeout=10)
    placeholder = asyncio.ensure_future(asyncio.sleep(0))  # the replica's task lives there
    try:
        yield RunningOperator(placeholder, stop, registry)
    finally:
        await placeholder
        loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 15)
        if thread.is_alive():
            raise AssertionError("the operator did not stop within 15 s")
        if errors:
            raise errors[0]
