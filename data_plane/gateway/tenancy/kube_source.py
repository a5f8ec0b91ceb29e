"""Kubernetes: read the Tenants of the gateway's namespace and their key Secrets.

Runs beside discovery, on the discovery interval. The gateway's service account needs
`list` on `tenants.serving.hoist.dev` and `get` on the Secrets the Tenants name. When the
API cannot be read, the last tenants and keys are kept.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from control_plane.api.kube_error import KubeError
from data_plane.gateway.discovery.kube_api import SECRETS, TENANTS, KubeApi
from data_plane.gateway.tenancy.keys import KeyRing
from data_plane.gateway.tenancy.secrets import from_objects
from data_plane.gateway.tenancy.service import Tenancy

log = logging.getLogger("hoist.gateway.tenancy")


async def refresh(tenancy: Tenancy, api: KubeApi, namespace: str) -> bool:
    try:
        items, _ = await api.list(TENANTS, namespace)
    except KubeError as exc:
        if exc.not_found:  # the CRD is not installed: no tenants
            tenancy.replace({}, KeyRing())
            return True
        log.warning("cannot list tenants, keeping the last ones: %s", exc.message)
        return False
    secrets: dict[str, dict[str, Any]] = {}
    for item in items:
        ref = ((item.get("spec") or {}).get("apiKeysSecret") or {}).get("name")
        if isinstance(ref, str) and ref not in secrets:
            try:
                secrets[ref] = await api.get(SECRETS, namespace, ref)
            except KubeError as exc:
                if not exc.not_found:
                    log.warning("cannot read Secret %s, keeping the last keys", ref)
                    return False
    tenants, keys, problems = from_objects(items, secrets)
    for problem in problems:
        log.warning("tenancy: %s", problem)
    tenancy.replace(tenants, keys)
    return True


async def refresh_loop(tenancy: Tenancy, api: KubeApi, namespace: str, interval_s: float) -> None:
    while True:
        await refresh(tenancy, api, namespace)
        await asyncio.sleep(interval_s)
