"""What a list-then-watch keeps, and how long it waits after a failure (pure).

The shell (`informer`) lists a collection, then watches from the list's resourceVersion;
each event goes through `apply_event`, which says whether what the gateway routes on may
have changed. After a failure the next attempt waits `backoff_s(attempt)`: doubling from
`base`, capped at `cap`, never zero (no hot loop against a failing API server).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"


def object_name(obj: Json) -> str | None:
    name = (obj.get("metadata") or {}).get("name")
    return name if isinstance(name, str) else None


def resource_version(obj: Json) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return version if isinstance(version, str) and version else None


def by_name(items: list[Json]) -> dict[str, Json]:
    """A listing as the cache keeps it."""
    return {name: item for item in items if (name := object_name(item)) is not None}


def apply_event(cache: dict[str, Json], event: str, obj: Json) -> bool:
    """Apply one watch event to `cache` (by name); True when the cache changed."""
    name = object_name(obj)
    if event == BOOKMARK or name is None:
        return False
    if event == DELETED:
        return cache.pop(name, None) is not None
    if event in (ADDED, MODIFIED):
        changed = cache.get(name) != obj
        cache[name] = obj
        return changed
    return False


def backoff_s(attempt: int, *, base: float, cap: float) -> float:
    """The wait before retry number `attempt` (1, 2, ...): base, 2*base, ... up to cap."""
    exponent = min(max(attempt, 1) - 1, 30)
    return max(min(cap, base * (1 << exponent)), 0.01)
