"""vLLM's runtime LoRA routes: `POST /v1/load_lora_adapter` and `/v1/unload_lora_adapter`.

Loads and unloads of one adapter name are serialized; a load checks the adapter folder as
vLLM would (its `adapter_config.json` and rank, never the weights) and takes the profile's
`lora_load_s` of simulated time.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiohttp import web

from data_plane.inference.simulator.engine import LoadedAdapter, SimEngine
from data_plane.inference.simulator.http_framing import read_json_body
from data_plane.inference.simulator.protocol.adapter_requests import adapter_rank, require_strings
from data_plane.inference.simulator.protocol.errors import ApiError


class AdapterRoutes:
    """The LoRA load/unload API of one engine."""

    def __init__(self, engine: SimEngine, *, accept_missing_lora_paths: bool) -> None:
        self.engine = engine
        self.accept_missing_lora_paths = accept_missing_lora_paths
        """Load a folder that does not exist (or has no config) as an adapter of no rank."""
        self._locks: dict[str, asyncio.Lock] = {}

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/load_lora_adapter", self.load_lora_adapter)
        app.router.add_post("/v1/unload_lora_adapter", self.unload_lora_adapter)

    async def load_lora_adapter(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = require_strings(await read_json_body(request), ("lora_name", "lora_path"))
        name, path = body["lora_name"], body["lora_path"]
        if not engine.enable_lora:
            raise ApiError("LoRA is not enabled; start the engine with --enable-lora.")
        if not name or not path:
            raise ApiError(
                "Both 'lora_name' and 'lora_path' must be provided.", err_type="InvalidUserInput"
            )
        if name == engine.served_model_name:
            raise ApiError(
                f"The lora adapter '{name}' conflicts with a served base model.",
                err_type="InvalidUserInput",
            )
        load_inplace = bool(body.get("load_inplace", False))
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in engine.adapters and not load_inplace:
                raise ApiError(
                    f"The lora adapter '{name}' has already been loaded. If you want to load "
                    "the adapter in place, set 'load_inplace' to True.",
                    err_type="InvalidUserInput",
                )
            rank = await asyncio.to_thread(self._adapter_rank, name, path)
            await engine.sleep_simulated(engine.profile.lora_load_s)
            engine.adapters[name] = LoadedAdapter(
                name=name, path=path, rank=rank, created=int(time.time())
            )
            if load_inplace:
                engine.core.lora_slots.evict(name)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    def _adapter_rank(self, name: str, path: str) -> int | None:
        """Check the adapter folder as vLLM would, without reading weights."""
        folder = Path(path)
        config_path = folder / "adapter_config.json"
        if not folder.exists() or not config_path.is_file():
            if self.accept_missing_lora_paths:
                return None
            raise ApiError(
                f"Loading lora {name} failed: No adapter found for {path}",
                status=404,
                err_type="NotFoundError",
            )
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise ApiError(
                f"Loading lora {name} failed: {exc}", status=500, err_type="InternalServerError"
            ) from None
        return adapter_rank(config, self.engine.max_lora_rank)

    async def unload_lora_adapter(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = require_strings(await read_json_body(request), ("lora_name",))
        name = body["lora_name"]
        if not name:
            raise ApiError(
                "'lora_name' needs to be provided to unload a LoRA adapter.",
                err_type="InvalidUserInput",
            )
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in engine.adapters:
                raise ApiError(
                    f"The lora adapter '{name}' cannot be found.",
                    status=404,
                    err_type="NotFoundError",
                )
            del engine.adapters[name]
            engine.core.lora_slots.evict(name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")
