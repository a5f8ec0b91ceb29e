"""kopf's peering rule as the walk applies it: who yields to whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_plane.operator.peering import yields_to_peers

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ME = "me@host/1"


def peer(priority: int, *, seconds_ago: float = 1, lifetime: Any = 60) -> dict[str, Any]:
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=seconds_ago)).isoformat(),
    }


@pytest.mark.parametrize(
    ("peers", "yields"),
    [
        pytest.param(None, False, id="no-peering-status"),
        pytest.param({}, False, id="nobody"),
        pytest.param({ME: peer(100)}, False, id="only-myself"),
        pytest.param({ME: peer(100), "other": peer(200)}, True, id="higher-priority-live"),
        pytest.param({ME: peer(100), "other": peer(100)}, True, id="same-priority-both-pause"),
        pytest.param({ME: peer(100), "other": peer(50)}, False, id="lower-priority"),
        pytest.param({"other": peer(200, seconds_ago=61)}, False, id="higher-but-dead"),
        pytest.param({"other": peer(200, seconds_ago=5, lifetime=3)}, False, id="own-lifetime"),
        pytest.param({"other": peer(200, seconds_ago=-5)}, True, id="clock-ahead"),
        pytest.param({"other": {"priority": 200}}, True, id="no-lastseen-counts-as-now"),
        pytest.param({"other": peer(200, lifetime="x")}, True, id="bad-lifetime-default-60"),
        pytest.param({"other": None}, False, id="removed-entry"),
        pytest.param({"other": {"lastseen": NOW.isoformat()}}, False, id="priority-defaults-0"),
    ],
)
def test_yields_to_peers(peers: dict[str, Any] | None, yields: bool) -> None:
    assert yields_to_peers(peers, identity=ME, priority=100, now=NOW) is yields


def test_a_zulu_timestamp_as_kopf_writes_it() -> None:
    seen = (NOW - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    peers = {"other": {"priority": 200, "lifetime": 60, "lastseen": seen}}
    assert yields_to_peers(peers, identity=ME, priority=100, now=NOW)
    assert not yields_to_peers(peers, identity=ME, priority=100, now=NOW + timedelta(minutes=2))
