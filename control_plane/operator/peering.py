"""Does this replica yield to another one? kopf's peering rule, as a pure function.

kopf pauses an operator whose peering object (`KopfPeering` per served namespace,
`ClusterKopfPeering` when serving the cluster) lists, in its `status`, a live peer other
than itself with a higher priority, or with the same priority (then every such replica
pauses and warns). A peer is live until `lastseen + lifetime`. The operator's periodic
walk (`walk.py`) asks this before each pass, so it pauses when kopf pauses the handlers:
kopf exposes its own paused state to no handler, and the walk is no kopf timer (which
kopf would stop by itself, but which costs every resource a finalizer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_LIFETIME_SECONDS = 60
"""kopf's assumption for a peer that states no lifetime."""


def _parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _is_live(info: Mapping[str, Any], now: datetime) -> bool:
    seen = _parse_time(info.get("lastseen"))
    if seen is None:  # kopf counts a peer without a time as seen just now
        return True
    try:
        lifetime = int(info.get("lifetime", DEFAULT_LIFETIME_SECONDS))
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    return seen + timedelta(seconds=lifetime) > now


def _priority(info: Mapping[str, Any]) -> int:
    try:
        return int(info.get("priority", 0))
    except (TypeError, ValueError):
        return 0


def yields_to_peers(
    peers: Mapping[str, Any] | None, *, identity: str, priority: int, now: datetime
) -> bool:
    """True when `peers` (a peering object's `status`: identity -> priority, lifetime,
    lastseen) holds a live replica other than `identity` with a priority >= `priority`."""
    for peer, info in (peers or {}).items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        if _is_live(info, now) and _priority(info) >= priority:
            return True
    return False
