"""The port convention that finds a replica's event endpoint from its engine URL."""

from __future__ import annotations

import pytest

from data_plane.gateway.kv_events.follower import event_endpoint


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
