"""Before an adapter is placed: may it have this name, and may it come from this source?

The tenant boundary on Kubernetes, where a LoraAdapter may be written by anyone with RBAC
on the namespace, or by the gateway on a tenant's behalf: the source must pass the policy
(the Tenant's `adapterSources`, else the operator's), names resolved; the name must not be
a Model's. A refusal is permanent for this spec: `SpecValid=False` with the reason, in
policy terms only (the adapter's status is readable by the tenant).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from control_plane.api import LoraAdapter
from control_plane.api.adapter_sources import AdapterSourcePolicy, SourceRefusedError
from control_plane.api.source_check import Resolver, check_resolved, system_resolver


@dataclass(frozen=True)
class Refused:
    reason: str
    """CamelCase: `SourceNotAllowed` or `NameTaken`."""
    message: str


async def admission_refusal(
    adapter: LoraAdapter,
    policy: AdapterSourcePolicy,
    *,
    model_named_alike: bool,
    forbidden: Iterable[PurePosixPath] = (),
    resolver: Resolver = system_resolver,
) -> Refused | None:
    """Why `adapter` may not be placed (None: it may), with `policy` the one that applies
    to its tenant and `model_named_alike` whether a Model of its namespace has its name."""
    if model_named_alike:
        return Refused(
            "NameTaken",
            f'a Model is named "{adapter.metadata.name}"; an adapter needs a name of its own',
        )
    try:
        await check_resolved(
            adapter.spec.source,
            policy,
            tenant=adapter.spec.tenant,
            forbidden=forbidden,
            resolver=resolver,
        )
    except SourceRefusedError as refused:
        return Refused("SourceNotAllowed", f"spec.source is not allowed: {refused.message}")
    return None
