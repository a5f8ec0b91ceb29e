"""Where the replicas are: one narrow interface, three sources.

- `local`: the embedded default's admin API (`GET /v1/state`).
- `static`: upstreams given on the command line, in the environment or in a file.
- `kubernetes`: the pods of each Model (and the adapters their annotation lists), watched.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from data_plane.gateway.fleet import FleetSnapshot


class DiscoveryError(Exception):
    """The source could not be read now; the gateway keeps its last snapshot."""


class Discovery(Protocol):
    async def fetch(self) -> FleetSnapshot:
        """What runs now. Raises DiscoveryError when the source cannot be read."""
        ...


@runtime_checkable
class WatchingDiscovery(Discovery, Protocol):
    """A source that is told of changes (Kubernetes watches) instead of being polled."""

    async def start(self) -> None:
        """Begin watching; returns once the first state is known (or a bound passed)."""
        ...

    async def wait_changed(self) -> None:
        """Return once the source changed since the last `fetch`."""
        ...

    async def close(self) -> None: ...


__all__ = ["Discovery", "DiscoveryError", "WatchingDiscovery"]
