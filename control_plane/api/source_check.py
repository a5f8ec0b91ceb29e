"""The adapter source policy with names resolved: the one check every shell runs.

`adapter_sources` judges what a source says; a host name needs resolving first, which is
I/O, so the resolver is passed in (`system_resolver` in production, a stub in tests). The
gateway's adapter API and the LoRA manager call `check_resolved` before they accept or
place an adapter; the sidecar checks again at connect time (`sidecar_runtime.source_guard`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import PurePosixPath

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    CheckedSource,
    RemoteUrl,
    check_addresses,
    check_source,
    host_allowed,
    is_ip_literal,
)

Resolver = Callable[[str], Awaitable[list[str]]]
"""A host name -> the addresses it resolves to (empty when it does not resolve)."""

RESOLVE_TIMEOUT_S = 3.0


async def system_resolver(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check_resolved(
    source: str,
    policy: AdapterSourcePolicy,
    *,
    tenant: str | None,
    forbidden: Iterable[PurePosixPath] = (),
    resolver: Resolver = system_resolver,
) -> CheckedSource:
    """`check_source`, then every address of a URL's host name (bounded in time: a name
    that does not resolve in `RESOLVE_TIMEOUT_S` counts as not resolving). Raises
    SourceRefusedError."""
    checked = check_source(source, policy, tenant=tenant, forbidden=forbidden)
    if not isinstance(checked, RemoteUrl):
        return checked
    host = checked.host
    if is_ip_literal(host) or host_allowed(host, policy.allowed_hosts):
        return checked
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await resolver(host)
    except TimeoutError:
        addresses = []
    check_addresses(host, addresses, policy)
    return checked


def snake_case(reason: str) -> str:
    """`PathNotAllowed` -> `path_not_allowed` (OpenAI's error codes, Kubernetes reasons
    stay CamelCase)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in reason).lstrip("_")
