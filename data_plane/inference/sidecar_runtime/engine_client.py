"""The sidecar's view of the engine: vLLM's health, model list and runtime LoRA endpoints.

Idempotent by contract: loading an adapter the engine already holds and unloading one it
does not hold both count as success.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from data_plane.inference.sidecar_runtime.plan import EngineView

_UNAVAILABLE = frozenset({502, 503, 504})


class EngineUnavailableError(Exception):
    """The engine could not be reached or failed (5xx): try again later."""


class EngineRefusedError(Exception):
    """The engine answered, and refused the request (4xx): retrying will not help."""


def _message(body: bytes) -> str:
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()[:500]
    if isinstance(doc, dict):
        error = doc.get("error", doc)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:500]
        if "detail" in doc:
            return str(doc["detail"])[:500]
    return str(doc)[:500]


class EngineClient:
    def __init__(self, base_url: str, http: aiohttp.ClientSession, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(
        self, method: str, path: str, body: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            async with self._http.request(
                method,
                f"{self.base_url}{path}",
                data=orjson.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json"} if body is not None else None,
                timeout=self._timeout,
            ) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineUnavailableError(f"{method} {path}: {exc or type(exc).__name__}") from exc

    async def view(self) -> EngineView:
        """Health and the adapters the engine lists; unhealthy if either call fails."""
        try:
            status, _ = await self._request("GET", "/health")
            if status != 200:
                return EngineView(healthy=False, adapters=frozenset())
            status, body = await self._request("GET", "/v1/models")
        except EngineUnavailableError:
            return EngineView(healthy=False, adapters=frozenset())
        if status != 200:
            return EngineView(healthy=False, adapters=frozenset())
        doc = orjson.loads(body)
        adapters = frozenset(
            str(entry["id"]) for entry in doc.get("data", []) if entry.get("parent")
        )
        return EngineView(healthy=True, adapters=adapters)

    async def load(self, name: str, path: str) -> None:
        status, body = await self._request(
            "POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path}
        )
        if status == 200:
            return
        message = _message(body)
        if status < 500 and "already been loaded" in message:
            return
        if status in _UNAVAILABLE:
            raise EngineUnavailableError(f"load of {name!r}: HTTP {status}: {message}")
        # vLLM answers 500 when the adapter itself cannot be loaded (bad weights, rank
        # above --max-lora-rank, wrong base model): a refusal, not an outage.
        raise EngineRefusedError(message or f"HTTP {status}")

    async def unload(self, name: str) -> None:
        status, body = await self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        if status in {200, 404}:
            return
        message = _message(body)
        if status < 500 and "not found" in message.lower():
            return
        if status >= 500:
            raise EngineUnavailableError(f"unload of {name!r}: HTTP {status}: {message}")
        raise EngineRefusedError(message or f"HTTP {status}")

    async def metrics_text(self) -> str | None:
        try:
            status, body = await self._request("GET", "/metrics")
        except EngineUnavailableError:
            return None
        return body.decode(errors="replace") if status == 200 else None
