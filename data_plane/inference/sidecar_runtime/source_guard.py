"""The sidecar's own check of adapter sources, at the moment it fetches (defence in depth).

The gateway and the LoRA manager refuse a source the policy does not allow before it gets
here; the sidecar checks again with what only it can see:
- a local path once its symlinks are resolved on the sidecar's own disk;
- the addresses a host name resolves to *when the connection is made* (the resolver
  below is the only one the download client has, so a name that resolved to a public
  address for the gateway and to 127.0.0.1 now is refused: no DNS rebinding);
- every redirect, before it is followed.
"""

from __future__ import annotations

import socket
from pathlib import PurePosixPath

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    SourceRefusedError,
    check_addresses,
)
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError


class AddressRefusedError(OSError):
    """Raised by the resolver; aiohttp wraps it in a ClientConnectorError (`os_error`)."""

    def __init__(self, refusal: SourceRefusedError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses a host unless every address
    is allowed by `policy` (public, or the host is listed by the operator)."""

    def __init__(self, policy: AdapterSourcePolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        try:
            check_addresses(host, [r["host"] for r in results], self._policy)
        except SourceRefusedError as refusal:
            raise AddressRefusedError(refusal) from None
        return results

    async def close(self) -> None:
        await self._inner.close()


def refused(refusal: SourceRefusedError) -> AdapterRefusedError:
    """The sidecar's answer for a source the policy refuses (422, policy terms only)."""
    return AdapterRefusedError(
        "SourceNotAllowed", f"the source is not allowed: {refusal.message}", status=422
    )


def install_dirs(adapter_dir: PurePosixPath) -> list[PurePosixPath]:
    """What is never a source: the sidecar's whole adapter directory (installed adapters,
    downloads in progress, its state file)."""
    return [adapter_dir]
