"""The gateway's start and stop: what start opens, a failed start closes again."""

from __future__ import annotations

import aiohttp
import pytest

from data_plane.gateway.discovery import Discovery
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import GatewaySettings


class DiscoveryDownError(Exception):
    pass


async def test_a_failed_start_closes_the_clients_it_opened() -> None:
    """A gateway whose start fails leaves no open session behind (nor its connections)."""
    opened: list[aiohttp.ClientSession] = []

    def failing_discovery(session: aiohttp.ClientSession) -> Discovery:
        opened.append(session)
        raise DiscoveryDownError

    gateway = Gateway(
        GatewaySettings(discovery="static", upstreams=["m=http://127.0.0.1:9"]), failing_discovery
    )
    with pytest.raises(DiscoveryDownError):
        await gateway.start()
    assert len(opened) == 1
    assert opened[0].closed
    with pytest.raises(RuntimeError, match="not started"):
        gateway.session  # noqa: B018 - the property raises once the session is closed
    with pytest.raises(RuntimeError, match="not started"):
        gateway.upstream  # noqa: B018
