"""The sidecar process against a stand-in engine: reconciliation, restarts, restore, drain."""

from __future__ import annotations

import asyncio
import inspect
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.data_plane.inference.sidecar_runtime.conftest import (
    StandInEngine,
    make_adapter,
    run_sidecar,
)


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def _has(response: Awaitable[httpx.Response], text: str) -> bool:
    return text in (await response).text


async def aput(url: str, name: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.put(f"{url}/adapters/{name}", json=body)


async def phase(url: str, name: str) -> str:
    return str((await get(f"{url}/adapters/{name}")).json().get("phase"))


async def test_put_while_engine_down_loads_when_it_comes_up(
    engine: StandInEngine, tmp_path: Path
) -> None:
    source = make_adapter(tmp_path / "src")
    engine.healthy = False
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        assert (await get(f"{sidecar.url}/readyz")).status_code == 503
        response = await aput(sidecar.url, "a", {"source": str(source)})
        assert response.status_code == 202, response.text
        assert response.json()["phase"] == "Loading"
        engine.healthy = True
        await eventually(lambda: _is(phase(sidecar.url, "a"), "Loaded"))
        assert "a" in engine.adapters
        assert (await get(f"{sidecar.url}/readyz")).status_code == 200


async def test_engine_that_lost_its_adapters_gets_them_back(
    engine: StandInEngine, tmp_path: Path
) -> None:
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        for name in ("a", "b"):
            source = make_adapter(tmp_path / name, name.encode())
            assert (await aput(sidecar.url, name, {"source": str(source)})).status_code == 200
        engine.adapters.clear()  # a restart between two polls
        await eventually(lambda: set(engine.adapters) == {"a", "b"})
        metrics_url = f"{sidecar.url}/metrics"
        await eventually(lambda: _has(get(metrics_url), "engine_restarts_total 1.0"))
        assert engine.loads == ["a", "b", "a", "b"]


async def test_engine_down_reports_nothing_loaded(engine: StandInEngine, tmp_path: Path) -> None:
    source = make_adapter(tmp_path / "src")
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        assert (await aput(sidecar.url, "a", {"source": str(source)})).status_code == 200
        engine.healthy = False
        await eventually(lambda: _is(phase(sidecar.url, "a"), "Loading"))
        item = (await get(f"{sidecar.url}/adapters/a")).json()
        assert item["reason"] == "EngineNotReady"


async def test_a_restarted_sidecar_resumes_its_desired_set(
    engine: StandInEngine, tmp_path: Path
) -> None:
    source = make_adapter(tmp_path / "src")
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        assert (await aput(sidecar.url, "a", {"source": str(source)})).status_code == 200
    engine.adapters.clear()
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        await eventually(lambda: _is(phase(sidecar.url, "a"), "Loaded"))
        assert "a" in engine.adapters


async def test_replacing_an_adapter_swaps_versions(engine: StandInEngine, tmp_path: Path) -> None:
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        v1 = make_adapter(tmp_path / "v1", b"one")
        v2 = make_adapter(tmp_path / "v2", b"two")
        first = (await aput(sidecar.url, "a", {"source": str(v1)})).json()
        second = (await aput(sidecar.url, "a", {"source": str(v2)})).json()
        assert first["sha256"] != second["sha256"]
        versions = list((tmp_path / "dir" / "adapters" / "a").iterdir())
        assert [v.name for v in versions] == [second["sha256"][:16]]
        assert engine.adapters["a"] == str(versions[0])


async def test_bad_requests_get_clear_errors(engine: StandInEngine, tmp_path: Path) -> None:
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        cases = [
            ("Bad_Name", {"source": "/x"}, 400, "InvalidName"),
            ("a", {"source": "/x", "extra": 1}, 400, "InvalidRequest"),
            ("a", {"source": "/x", "sha256": "xyz"}, 400, "InvalidSha256"),
            ("a", {}, 400, "InvalidRequest"),
        ]
        for name, body, status, reason in cases:
            response = await aput(sidecar.url, name, body)
            assert response.status_code == status, response.text
            assert response.json()["error"]["reason"] == reason
        big = make_adapter(tmp_path / "big", b"x" * 200_000)
        response = await aput(sidecar.url, "a", {"source": str(big)})
        assert (response.status_code, response.json()["error"]["reason"]) == (
            413,
            "AdapterTooLarge",
        )
        empty = tmp_path / "empty"
        empty.mkdir()
        response = await aput(sidecar.url, "a", {"source": str(empty)})
        assert response.json()["error"]["reason"] == "InvalidAdapter"
        assert list((tmp_path / "dir" / ".staging").iterdir()) == []


async def test_sigterm_lets_the_load_in_progress_finish(
    engine: StandInEngine, tmp_path: Path
) -> None:
    source = make_adapter(tmp_path / "src")
    engine.load_delay = 1.5
    async with run_sidecar(engine.url, tmp_path / "dir", tmp_path / "log") as sidecar:
        pending = asyncio.create_task(aput(sidecar.url, "a", {"source": str(source)}))
        await eventually((tmp_path / "dir" / "adapters" / "a").exists)
        sidecar.process.send_signal(signal.SIGTERM)
        response = await pending
        assert response.status_code == 200, response.text
        await eventually(lambda: sidecar.process.poll() is not None)
        # uvicorn re-raises the signal after its graceful shutdown.
        assert sidecar.process.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in sidecar.log.read_text()
        assert "a" in engine.adapters
