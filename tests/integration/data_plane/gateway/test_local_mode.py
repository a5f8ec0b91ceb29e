"""Local discovery and the adapter API against an admin API (the embedded default's contract)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.support.fake_admin import FakeAdmin
from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("llama", adapters=("sql",))
    await e.start()
    yield e
    await e.stop()


@pytest.fixture
async def admin(engine: FakeVllm) -> AsyncIterator[FakeAdmin]:
    a = FakeAdmin()
    a.add_model("llama", [engine.url], adapters=("sql",))
    await a.start()
    yield a
    await a.stop()


async def test_routes_what_the_admin_api_reports(admin: FakeAdmin, engine: FakeVllm) -> None:
    async with (
        run_gateway(
            discovery="local", admin_url=admin.url, discovery_interval_s=0.05, cold_start_hold_s=0.2
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        reply = await client.completions.create(model="sql", prompt="x", max_tokens=1)
        assert reply.choices[0].text == "t0"
        admin.models[0]["replicas"][0]["ready"] = False
        before = admin.state_requests
        await wait_until(lambda: admin.state_requests >= before + 2)
        with pytest.raises(openai.InternalServerError) as info:
            await client.completions.create(model="llama", prompt="x")
        assert info.value.status_code == 503
    assert engine.requests == 1


async def test_a_request_is_held_until_a_replica_is_ready(
    admin: FakeAdmin, engine: FakeVllm
) -> None:
    """Scale from zero or a restart: the request waits (bounded) instead of failing."""
    admin.models[0]["replicas"][0]["ready"] = False
    async with (
        run_gateway(
            discovery="local", admin_url=admin.url, discovery_interval_s=0.05, cold_start_hold_s=20
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        request = asyncio.create_task(client.completions.create(model="llama", prompt="x"))
        metrics = gw.gateway.metrics
        held = metrics.child(metrics.queued, "llama", "cold_start")
        await wait_until(lambda: held._value.get() == 1)
        assert not request.done()
        admin.models[0]["replicas"][0]["ready"] = True
        reply = await request
        assert reply.choices
    assert engine.requests == 1


async def test_held_requests_are_bounded_per_model(admin: FakeAdmin, engine: FakeVllm) -> None:
    """Beyond `cold_start_max_held` waiting for a model to start, a request gets 503 with
    Retry-After at once; the held ones are still served when a replica is ready."""
    admin.models[0]["replicas"][0]["ready"] = False
    async with (
        run_gateway(
            discovery="local", admin_url=admin.url, discovery_interval_s=0.05,
            cold_start_hold_s=60, cold_start_max_held=2,
        ) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):  # fmt: skip
        metrics = gw.gateway.metrics
        held = metrics.child(metrics.queued, "llama", "cold_start")
        waiting = [
            asyncio.create_task(client.completions.create(model="llama", prompt="x"))
            for _ in range(2)
        ]
        await wait_until(lambda: held._value.get() == 2)
        with pytest.raises(openai.InternalServerError) as info:
            await client.completions.create(model="llama", prompt="x")
        assert info.value.status_code == 503
        assert info.value.response.headers["retry-after"] == "2"
        assert "2 requests already wait" in str(info.value)
        rejected = metrics.child(metrics.rejected, "cold_start_full")
        assert rejected._value.get() == 1
        admin.models[0]["replicas"][0]["ready"] = True
        assert all(reply.choices for reply in await asyncio.gather(*waiting))
    assert engine.requests == 2


async def test_adapter_api_writes_the_local_store(admin: FakeAdmin, tmp_path: Path) -> None:
    async with (
        run_gateway(discovery="local", admin_url=admin.url, model_repository=str(tmp_path)) as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        flat = {"name": "chat", "baseModel": "llama", "source": "adapters/chat"}
        async with http.post("/v1/adapters", json=flat) as resp:
            assert resp.status == 201
            stored = await resp.json()
        assert stored["spec"]["source"] == str(tmp_path / "adapters/chat")
        assert stored["status"]["phase"] == "Pending"
        async with http.post("/v1/adapters", json=flat) as resp:
            assert resp.status == 200
        async with http.get("/v1/adapters") as resp:
            assert [a["metadata"]["name"] for a in (await resp.json())["data"]] == ["chat"]
        async with http.get("/v1/adapters/chat") as resp:
            assert (await resp.json())["spec"]["baseModel"] == "llama"
        async with http.get("/v1/models") as resp:
            ids = {m["id"]: m["parent"] for m in (await resp.json())["data"]}
        assert ids == {"llama": None, "sql": "llama", "chat": "llama"}
        async with http.delete("/v1/adapters/chat") as resp:
            assert resp.status == 200
        async with http.get("/v1/adapters/chat") as resp:
            assert resp.status == 404
            assert "message" in (await resp.json())["error"]
        async with http.delete("/v1/adapters/chat") as resp:
            assert resp.status == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(
            {"name": "x", "baseModel": "nope", "source": "/a"}, "spec.baseModel", id="unknown-base"
        ),
        pytest.param(
            {"name": "x", "baseModel": "llama", "source": "ftp://a"}, "spec.source", id="bad-scheme"
        ),
        pytest.param(
            {"name": "Bad_Name", "baseModel": "llama", "source": "/a"},
            "metadata.name",
            id="bad-name",
        ),
        pytest.param({"name": "x", "baseModel": "llama"}, "spec.source", id="no-source"),
        pytest.param([1], None, id="not-an-object"),
    ],
)
async def test_bad_adapters_are_400(admin: FakeAdmin, body: object, param: str | None) -> None:
    async with (
        run_gateway(discovery="local", admin_url=admin.url) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError) as info:
            await client.post("/adapters", body=body, cast_to=object)
        assert info.value.param == param
    assert admin.adapters == {}


async def test_unreachable_admin_api_leaves_the_gateway_alive_and_unready() -> None:
    async with (
        run_gateway(discovery="local", admin_url="http://127.0.0.1:9") as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        async with http.get("/healthz") as resp:
            assert resp.status == 200
        async with http.get("/readyz") as resp:
            assert resp.status == 503
            assert resp.headers["retry-after"] == "2"


async def test_the_supervisors_command_line(admin: FakeAdmin, engine: FakeVllm) -> None:
    """`python -m data_plane.gateway --host H --port P --discovery local --admin-url URL`."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"LOG_LEVEL": "warning", "MAX_CONCURRENT_REQUESTS": "8"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_plane.gateway", "--host", "127.0.0.1", "--port", str(port),
        "--discovery", "local", "--admin-url", admin.url,
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with http.get("/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
            body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post("/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    # uvicorn shuts down gracefully, then re-raises SIGTERM to report it.
    assert proc.returncode in (0, -signal.SIGTERM), err.decode()
    assert b"Traceback" not in err


def test_bad_flags_exit_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "data_plane.gateway", "--discovery", "static"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "static discovery needs" in done.stderr


class _Backend:
    """The supervisor's side of its admin API, reduced to one model and one engine."""

    def __init__(self, engine_url: str) -> None:
        from control_plane.local.store import AdapterStore

        self.store = AdapterStore(None, lambda: {"llama"})
        self.engine_url = engine_url
        self.removed: list[str] = []

    def state(self) -> Any:
        from control_plane.api.embedded import EmbeddedState, ModelState, ReplicaPhase, ReplicaState

        replica = ReplicaState(
            name="llama-0", engine_url=self.engine_url, sidecar_url="http://127.0.0.1:1",
            phase=ReplicaPhase.READY, ready=True, adapters=["sql"],
        )  # fmt: skip
        model = ModelState(
            name="llama", engine="sim", routing_policy="round-robin", desired_replicas=1,
            max_loras=4, replicas=[replica],
        )  # fmt: skip
        return EmbeddedState(models=[model], adapters=list(self.store))

    def adapters_changed(self) -> None:
        pass

    async def remove_adapter(self, adapter: Any) -> None:
        self.removed.append(adapter.metadata.name)


async def test_against_the_supervisors_admin_api(engine: FakeVllm, tmp_path: Path) -> None:
    from aiohttp import web

    from control_plane.local import admin_token
    from control_plane.local.admin_api import build_app

    token_file = tmp_path / "run" / "admin-token"
    token = admin_token.issue(token_file)
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.parent.stat().st_mode & 0o777 == 0o700
    backend = _Backend(engine.url)
    runner = web.AppRunner(build_app(backend, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    admin_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(base_url=admin_url) as http:
            async with http.get("/healthz") as resp:
                assert resp.status == 200
            # the probe: a write to another tenant's model, with no or a wrong credential
            doc = {"spec": {"baseModel": "llama", "source": "/x", "tenant": "team-b"}}
            for headers in ({}, admin_token.bearer("not-the-token"), {"Authorization": token}):
                async with http.get("/v1/state", headers=headers) as resp:
                    assert resp.status == 401
                async with http.put("/v1/adapters/evil", json=doc, headers=headers) as resp:
                    assert resp.status == 401
            assert list(backend.store) == []
        async with (
            run_gateway(
                discovery="local",
                admin_url=admin_url,
                admin_token_file=token_file,
                adapter_source_roots=["/adapters"],
            ) as gw,
            openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
        ):
            assert gw.gateway.fleet.models["llama"].policy_name == "round-robin"
            reply = await client.completions.create(model="sql", prompt="x", max_tokens=1)
            assert reply.choices[0].text == "t0"
            created = await client.post(
                "/adapters",
                body={"name": "chat", "baseModel": "llama", "source": "/adapters/chat"},
                cast_to=object,
            )
            assert isinstance(created, dict)
            assert created["metadata"]["name"] == "chat"
            ids = {m.id for m in (await client.models.list()).data}
            assert ids == {"llama", "sql", "chat"}
            with pytest.raises(openai.BadRequestError, match="base model"):
                await client.post(
                    "/adapters",
                    body={"name": "x", "baseModel": "other", "source": "/a"},
                    cast_to=object,
                )
            await client.delete("/adapters/chat", cast_to=object)
            assert backend.removed == ["chat"]
            with pytest.raises(openai.NotFoundError):
                await client.get("/adapters/chat", cast_to=object)
    finally:
        await runner.cleanup()


async def test_a_replica_that_goes_away_leaves_no_series(
    admin: FakeAdmin, engine: FakeVllm
) -> None:
    async with (
        run_gateway(discovery="local", admin_url=admin.url, discovery_interval_s=0.05) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        await client.completions.create(model="llama", prompt="x", max_tokens=1)
        async with http.get("/metrics") as resp:
            assert 'replica="llama-0"' in await resp.text()
        admin.models[0]["replicas"] = []
        await wait_until(lambda: not list(gw.gateway.fleet.replicas()))
        async with http.get("/metrics") as resp:
            assert 'replica="llama-0"' not in await resp.text()


async def test_a_known_model_exports_zero_demand_before_its_first_request(
    admin: FakeAdmin,
) -> None:
    """The autoscaler and the dashboards read 0, not "no data", for a model nobody has called."""
    async with (
        run_gateway(discovery="local", admin_url=admin.url, discovery_interval_s=0.05) as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        await wait_until(lambda: bool(list(gw.gateway.fleet.replicas())))
        async with http.get("/metrics") as resp:
            text = await resp.text()
    assert 'gateway_in_flight_requests{model="llama"} 0.0' in text
    for reason in ("gateway", "replica_cap", "cold_start"):
        assert f'gateway_queued_requests{{model="llama",reason="{reason}"}} 0.0' in text


async def test_a_relative_source_too_long_once_resolved_is_a_400(
    admin: FakeAdmin, tmp_path: Path
) -> None:
    """Found by schemathesis: a 2048-character relative source, resolved against the model
    repository, grew past the field's limit and crashed the route (500)."""
    async with (
        run_gateway(discovery="local", admin_url=admin.url, model_repository=str(tmp_path)) as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        flat = {"name": "chat", "baseModel": "llama", "source": "a" * 2048}
        async with http.post("/v1/adapters", json=flat) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["param"] == "source"


async def test_a_model_new_to_this_worker_is_read_again_not_404(
    admin: FakeAdmin, engine: FakeVllm
) -> None:
    """Another worker (or the adapter API) made it known: this worker's next poll is far off,
    so the miss reads the admin API once more and routes instead of answering 404."""
    async with (
        run_gateway(discovery="local", admin_url=admin.url, discovery_interval_s=3600) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        admin.models[0]["replicas"][0]["adapters"].append("fresh")
        admin.adapters["fresh"] = {
            "metadata": {"name": "fresh"},
            "spec": {"baseModel": "llama"},
            "status": {"phase": "Ready"},
        }
        engine.adapters.add("fresh")
        reply = await client.completions.create(model="fresh", prompt="x", max_tokens=1)
        assert reply.choices[0].text == "t0"


async def test_unknown_models_share_few_reads_and_are_404(admin: FakeAdmin) -> None:
    async with (
        run_gateway(discovery="local", admin_url=admin.url, discovery_interval_s=3600) as gw,
        openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client,
    ):
        before = admin.state_requests
        asks = [
            client.completions.create(model=f"nope-{i}", prompt="x", max_tokens=1)
            for i in range(40)
        ]
        answers = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(a, openai.NotFoundError) for a in answers), answers
        assert all(a.code == "model_not_found" for a in answers)  # type: ignore[union-attr]
        # one read for the misses that arrived before it began, one for those that came
        # during it, and so on: far fewer than one per request
        assert 1 <= admin.state_requests - before <= 4
