"""Kubernetes: read the Tenants of the gateway's namespace and their key Secrets.

Runs beside discovery, on the same interval. The gateway's service account needs `list`
on `tenants.serving.hoist.dev` and `get` on the Secrets the Tenants name. When the API
cannot be read, the last tenants and keys are kept.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from data_plane.gateway.discovery.kubernetes import KubeClient, KubeError
from data_plane.gateway.tenancy.keys import KeyRing
from data_plane.gateway.tenancy.secrets import from_objects
from data_plane.gateway.tenancy.service import Tenancy

log = logging.getLogger("hoist.gateway.tenancy")

_TENANTS = "/apis/serving.hoist.dev/v1alpha1/namespaces/{ns}/tenants"
_SECRET_PATH = "/api/v1/namespaces/{ns}/secrets/{name}"  # noqa: S105 - a URL path, not a secret


async def refresh(tenancy: Tenancy, client: KubeClient, namespace: str) -> bool:
    try:
        listing = await client.request("GET", _TENANTS.format(ns=namespace))
    except KubeError as exc:
        if exc.status == 404:  # the CRD is not installed: no tenants
            tenancy.replace({}, KeyRing())
            return True
        log.warning("cannot list tenants, keeping the last ones: %s", exc.message)
        return False
    items: list[Any] = [i for i in (listing or {}).get("items") or [] if isinstance(i, dict)]
    secrets: dict[str, dict[str, Any]] = {}
    for item in items:
        ref = ((item.get("spec") or {}).get("apiKeysSecret") or {}).get("name")
        if isinstance(ref, str) and ref not in secrets:
            try:
                found = await client.request("GET", _SECRET_PATH.format(ns=namespace, name=ref))
            except KubeError as exc:
                if exc.status != 404:
                    log.warning("cannot read Secret %s, keeping the last keys", ref)
                    return False
                continue
            if isinstance(found, dict):
                secrets[ref] = found
    tenants, keys, problems = from_objects(items, secrets)
    for problem in problems:
        log.warning("tenancy: %s", problem)
    tenancy.replace(tenants, keys)
    return True


async def refresh_loop(
    tenancy: Tenancy, client: KubeClient, namespace: str, interval_s: float
) -> None:
    while True:
        await refresh(tenancy, client, namespace)
        await asyncio.sleep(interval_s)
