"""Local discovery: poll the embedded default's admin API."""

from __future__ import annotations

import aiohttp
import orjson

from data_plane.gateway.discovery import DiscoveryError
from data_plane.gateway.discovery.state import StateError, parse_state
from data_plane.gateway.fleet import FleetSnapshot


class LocalDiscovery:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        admin_url: str,
        timeout_s: float = 2.0,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._session = session
        self._headers = headers or {}
        self._url = admin_url.rstrip("/") + "/v1/state"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def fetch(self) -> FleetSnapshot:
        try:
            async with self._session.get(
                self._url, timeout=self._timeout, headers=self._headers
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise DiscoveryError(f"{self._url} answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DiscoveryError(f"{self._url}: {exc!r}") from exc
        try:
            return parse_state(orjson.loads(body))
        except (orjson.JSONDecodeError, StateError) as exc:
            raise DiscoveryError(f"{self._url}: {exc}") from exc
