"""A minimal `KubeApi` over aiohttp for tests against kmock's emulator.

The operator's own client is `control_plane.kube.KubeClient`; this stand-in has the same
three calls the autoscaler uses, with no authentication, so the autoscaler's tests do not
depend on the operator's wiring.
"""

from __future__ import annotations

from typing import Any

import aiohttp

Json = dict[str, Any]


class PlainKubeApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def get(self, path: str) -> Json | None:
        async with self._session.get(self._base + path) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            body: Json = await resp.json()
            return body

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Json]:
        params = {"labelSelector": label_selector} if label_selector else {}
        async with self._session.get(self._base + path, params=params) as resp:
            if resp.status == 404:  # kmock's emulator: no object of that kind created yet
                return []
            resp.raise_for_status()
            items: list[Json] = (await resp.json()).get("items", [])
            return items

    async def merge_patch(self, path: str, body: Json) -> Json:
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self._session.patch(self._base + path, json=body, headers=headers) as resp:
            resp.raise_for_status()
            out: Json = await resp.json()
            return out

    async def create(self, path: str, body: Json) -> Json:
        async with self._session.post(self._base + path, json=body) as resp:
            resp.raise_for_status()
            out: Json = await resp.json()
            return out
