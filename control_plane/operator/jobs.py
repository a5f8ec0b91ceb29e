"""The operator's periodic jobs: which pass runs over which index, how often.

| job | over | every | does |
|---|---|---|---|
| `tenants` | each namespace holding Tenants | `tenant_resync_seconds` | re-validate them |
| `models` | each Model (read afresh) | `model_resync_seconds` | re-apply Deployment + Service |
| `adapters` | each LoraAdapter (read afresh) | `adapter_resync_seconds` | admission, drift repair |
| `sweep` | each Model | `adapter_resync_seconds` | unload adapters nothing declares |
| `autoscale` | each Model with `autoscaling.enabled` | `autoscaler_interval_seconds` | one tick |

Models and LoraAdapters are read afresh before their pass (one `get` each): the pass
writes (a Deployment, a sidecar load), and an index may hold a resource that is gone (kopf
drops an entry on its DELETED event only, so one deleted while a watch was broken stays
until the operator restarts); re-applying a deleted Model's Deployment would start pods
the garbage collector then deletes. The sweep and the autoscaler only read for a Model
that is gone (no pods, no Deployment: nothing to do), and tenants are re-listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from control_plane.api.constants import LORA_ADAPTER_PLURAL, MODEL_PLURAL, TENANT_PLURAL
from control_plane.autoscaler.handlers import autoscaling_enabled
from control_plane.kube import KubeClient
from control_plane.operator.indexed import Indexed, Pass, each
from control_plane.operator.settings import OperatorSettings
from control_plane.operator.walk import Job


@dataclass(frozen=True)
class Passes:
    """The per-resource passes the managers' `register` functions hand back."""

    recheck_tenants: Callable[[str], Awaitable[None]]
    model: Pass
    adapter: Pass
    sweep: Pass
    autoscale: Pass | None = None
    """None: autoscaling is off."""


def autoscale_job(
    kube: KubeClient,
    indexed: Indexed,
    autoscale: Pass,
    *,
    interval_seconds: float,
    concurrency: int,
) -> Job:
    async def run() -> None:
        docs = [d for d in indexed.docs(MODEL_PLURAL) if autoscaling_enabled(d)]
        await each(kube, MODEL_PLURAL, docs, autoscale, concurrency=concurrency)

    return Job("autoscale", interval_seconds, run)


def operator_jobs(
    settings: OperatorSettings, kube: KubeClient, indexed: Indexed, passes: Passes
) -> list[Job]:
    bound = settings.walk_concurrency

    def over(plural: str, one_pass: Pass, *, fresh: bool = False) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            docs = indexed.docs(plural)
            await each(kube, plural, docs, one_pass, concurrency=bound, fresh=fresh)

        return run

    async def tenants() -> None:
        for namespace in indexed.namespaces(TENANT_PLURAL):
            await passes.recheck_tenants(namespace)

    jobs = [
        Job("tenants", settings.tenant_resync_seconds, tenants),
        Job("models", settings.model_resync_seconds, over(MODEL_PLURAL, passes.model, fresh=True)),
        Job(
            "adapters",
            settings.adapter_resync_seconds,
            over(LORA_ADAPTER_PLURAL, passes.adapter, fresh=True),
        ),
        Job("sweep", settings.adapter_resync_seconds, over(MODEL_PLURAL, passes.sweep)),
    ]
    if passes.autoscale is not None:
        jobs.append(
            autoscale_job(
                kube,
                indexed,
                passes.autoscale,
                interval_seconds=settings.autoscaler_interval_seconds,
                concurrency=bound,
            )
        )
    return jobs
