"""Where the replicas are: one narrow interface, three sources.

- `local`: the embedded default's admin API (`GET /v1/state`).
- `static`: upstreams given on the command line, in the environment or in a file.
- `kubernetes`: the pods of each Model (and the adapters their annotation lists).
"""

from __future__ import annotations

from typing import Protocol

from data_plane.gateway.fleet import FleetSnapshot


class DiscoveryError(Exception):
    """The source could not be read now; the gateway keeps its last snapshot."""


class Discovery(Protocol):
    async def fetch(self) -> FleetSnapshot:
        """What runs now. Raises DiscoveryError when the source cannot be read."""
        ...


__all__ = ["Discovery", "DiscoveryError"]
