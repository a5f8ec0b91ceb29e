"""The port convention that finds a replica's event endpoint from its engine URL, and the
follower's set of subscriptions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from data_plane.gateway.kv_events.follower import KvEventFollower, event_endpoint
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.wire import BlockStored


@pytest.mark.parametrize(
    ("url", "offset", "expected"),
    [
        pytest.param("http://127.0.0.1:8000", 1000, "tcp://127.0.0.1:9000", id="offset"),
        pytest.param("http://10.1.2.3:8000/", 1000, "tcp://10.1.2.3:9000", id="pod-ip"),
        pytest.param("http://[::1]:8000", 1000, "tcp://[::1]:9000", id="ipv6"),
        pytest.param("http://engine.ns.svc", 1000, "tcp://engine.ns.svc:1080", id="default-port"),
        pytest.param("http://127.0.0.1:65000", 1000, None, id="past-65535"),
        pytest.param("http://127.0.0.1:8000", -8000, None, id="port-0"),
    ],
)
def test_the_event_endpoint_is_the_engine_port_plus_the_offset(
    url: str, offset: int, expected: str | None
) -> None:
    assert event_endpoint(url, offset) == expected


@dataclass
class Engine:
    name: str
    url: str


def _stored(index: KvBlockIndex, replica: str) -> None:
    index.apply(replica, 0, [BlockStored([7], None, [1, 2, 3, 4], 4, None, None)])


async def test_the_follower_follows_exactly_the_replicas_it_is_told() -> None:
    """Subscriptions to loopback ports nobody serves (ZMQ connects lazily): started for new
    replicas, restarted when the endpoint moves, stopped (blocks forgotten) when gone."""
    index = KvBlockIndex()
    follower = KvEventFollower(index, port_offset=1000)
    try:
        follower.follow([Engine("a", "http://127.0.0.1:20001"), Engine("b", "http://[::1]:20002")])
        assert sorted(follower.followed()) == ["a", "b"]
        _stored(index, "a")
        _stored(index, "b")
        follower.follow([Engine("a", "http://127.0.0.1:20001"), Engine("b", "http://[::1]:20002")])
        assert (index.num_blocks("a"), index.num_blocks("b")) == (1, 1)  # unchanged: kept
        follower.follow([Engine("a", "http://127.0.0.1:20003")])  # a moved, b left
        assert follower.followed() == ["a"]
        assert (index.num_blocks("a"), index.num_blocks("b")) == (0, 0)
        follower.follow([Engine("c", "http://127.0.0.1:65000")])  # no endpoint past 65535
        assert follower.followed() == []
    finally:
        await follower.close()  # closes every socket and the context (no warning)
    assert follower.followed() == []
