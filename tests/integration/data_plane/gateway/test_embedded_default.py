"""The gateway as the embedded default runs it: `hoist up` with simulated engines, real
sidecars and the real gateway, reached with the official OpenAI SDK."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.support.ports import free_port_block

FLEET = textwrap.dedent(
    """
    apiVersion: serving.hoist.dev/v1alpha1
    kind: Model
    metadata:
      name: tiny-sim
    spec:
      source: tiny
      engine: sim
      replicas: 2
    """
)


@pytest.fixture
async def gateway_url(tmp_path: Path) -> AsyncIterator[str]:
    async with hoist_up(tmp_path, FLEET) as url:
        yield url


@asynccontextmanager
async def hoist_up(tmp_path: Path, fleet: str) -> AsyncIterator[str]:
    """`hoist up -f` the `fleet` declarations; the gateway's URL once it is ready."""
    (tmp_path / "fleet.yaml").write_text(fleet)
    base = free_port_block(8)
    env = os.environ | {
        "HOIST_HOME": str(tmp_path / "home"),
        "HOIST_GATEWAY_PORT": str(base),
        "HOIST_ADMIN_PORT": str(base + 1),
        "HOIST_ENGINE_BASE_PORT": str(base + 2),
        "HOIST_SIDECAR_BASE_PORT": str(base + 4),
        "HOIST_STOP_GRACE_S": "5",
        "HOIST_ADAPTER_SOURCE_ROOTS": "/nonexistent",
        "LOG_LEVEL": "warning",
    }
    log = (tmp_path / "hoist-up.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "control_plane.cli", "up", "-f", str(tmp_path / "fleet.yaml"),
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{base}"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert proc.returncode is None, (tmp_path / "hoist-up.log").read_text()
                try:
                    async with http.get(url + "/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.2)
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def test_the_sdk_through_the_embedded_default(gateway_url: str) -> None:
    async with openai.AsyncOpenAI(
        base_url=gateway_url + "/v1", api_key="x", max_retries=0
    ) as client:
        assert [m.id for m in (await client.models.list()).data] == ["tiny-sim"]
        reply = await client.chat.completions.create(
            model="tiny-sim", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens == 3
        stream = await client.completions.create(
            model="tiny-sim", prompt="x", max_tokens=3, stream=True
        )
        assert len([c async for c in stream if c.choices and c.choices[0].text]) == 3
        created = await client.post(
            "/adapters",
            body={"name": "chat", "baseModel": "tiny-sim", "source": "/nonexistent/chat"},
            cast_to=object,
        )
        assert isinstance(created, dict)
        assert created["metadata"]["name"] == "chat"
        listed = await client.get("/adapters", cast_to=object)
        assert isinstance(listed, dict)
        assert [a["metadata"]["name"] for a in listed["data"]] == ["chat"]
        with pytest.raises(openai.BadRequestError):
            await client.post(
                "/adapters", body={"name": "x", "baseModel": "nope", "source": "/a"}, cast_to=object
            )
        await client.delete("/adapters/chat", cast_to=object)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "hi"}]
            )


PRECISE_FLEET = FLEET.replace("replicas: 2", "replicas: 2\n  routingPolicy: precise-prefix")


async def test_precise_prefix_routes_by_the_simulators_kv_events(tmp_path: Path) -> None:
    """The embedded default starts the simulators with `--kv-events-config` on the port
    convention, and the gateway follows them: repeats of a prompt become KV hits."""
    messages = [
        {"role": "system", "content": " ".join(["Answer in one short sentence."] * 20)},
        {"role": "user", "content": "Which replica holds this prompt?"},
    ]
    hits = (
        'gateway_routing_decisions_total{model="tiny-sim",policy="precise-prefix",reason="kv-hit"}'
    )
    async with (
        hoist_up(tmp_path, PRECISE_FLEET) as url,
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client,
        aiohttp.ClientSession() as http,
        asyncio.timeout(60),
    ):
        while True:  # the first request's events reach the gateway a little later
            await client.chat.completions.create(
                model="tiny-sim",
                messages=messages,  # type: ignore[arg-type]
                max_tokens=2,
            )
            async with http.get(url + "/metrics") as resp:
                text = await resp.text()
            if any(
                line.startswith(hits) and float(line.rsplit(" ", 1)[1]) > 0
                for line in text.splitlines()
            ):
                break
            await asyncio.sleep(0.2)
