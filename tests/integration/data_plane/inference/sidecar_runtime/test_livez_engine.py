"""`/livez/engine`: the engine container's liveness probe, answered by the sidecar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.integration.data_plane.inference.sidecar_runtime.conftest import (
    StandInEngine,
    run_sidecar,
)

BOUND_S = 1.0
FAST = {
    "SIDECAR_ENGINE_PROBE_INTERVAL_SECONDS": "0.1",
    "SIDECAR_ENGINE_PROBE_TIMEOUT_SECONDS": "0.2",
    "SIDECAR_ENGINE_UNRESPONSIVE_AFTER_SECONDS": str(BOUND_S),
}


async def _livez(client: httpx.AsyncClient, url: str) -> tuple[int, str]:
    response = await client.get(f"{url}/livez/engine")
    return response.status_code, str(response.json()["state"])


async def _until(client: httpx.AsyncClient, url: str, want: tuple[int, str]) -> None:
    for _ in range(200):
        if await _livez(client, url) == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/livez/engine never became {want}: {await _livez(client, url)}")


async def test_a_start_is_live_and_a_hang_after_health_is_not(
    engine: StandInEngine, tmp_path: Path
) -> None:
    engine.frozen = True  # loading: the port accepts, /health does not answer yet
    async with (
        run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log", FAST) as sidecar,
        httpx.AsyncClient(timeout=5) as client,
    ):
        await asyncio.sleep(3 * BOUND_S)  # well past the hang bound, yet still starting
        assert await _livez(client, sidecar.url) == (200, "Starting")
        engine.frozen = False
        await _until(client, sidecar.url, (200, "Healthy"))
        engine.frozen = True  # it was healthy: now it is hung
        await _until(client, sidecar.url, (503, "Hung"))
        for _ in range(100):  # the prober records the hang at its next probe
            metrics = (await client.get(f"{sidecar.url}/metrics")).text
            if "engine_hangs_total 1.0" in metrics:
                break
            await asyncio.sleep(0.1)
        assert "engine_hangs_total 1.0" in metrics
        assert "engine_live 0.0" in metrics
        engine.frozen = False  # answers again (a kubelet restart, or it recovered)
        await _until(client, sidecar.url, (200, "Healthy"))
        # The sidecar's own health never depended on the engine's.
        assert (await client.get(f"{sidecar.url}/healthz")).status_code == 200
