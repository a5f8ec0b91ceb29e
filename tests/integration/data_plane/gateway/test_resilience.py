"""Limits, timeouts, retries, passive health and cancellation, through real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import openai
import orjson
import pytest

from tests.support.fake_vllm import FakeVllm
from tests.support.gateway import run_gateway
from tests.support.waiting import wait_until

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def spare() -> AsyncIterator[FakeVllm]:
    e = FakeVllm("tiny")
    await e.start()
    yield e
    await e.stop()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sdk(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)


async def test_concurrency_limit_answers_429_with_retry_after(engine: FakeVllm) -> None:
    engine.hang = True
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url}"],
            max_concurrent_requests=1,
            queue_timeout_s=0.2,
        ) as gw,
        sdk(gw.url) as client,
    ):
        first = asyncio.create_task(client.chat.completions.create(**CHAT))  # type: ignore[arg-type]
        await wait_until(lambda: engine.in_flight == 1)
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.body is not None
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await wait_until(lambda: engine.in_flight == 0)


async def test_per_replica_cap_waits_then_429(engine: FakeVllm) -> None:
    engine.hang = True
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url}"],
            per_replica_max_in_flight=1,
            queue_timeout_s=0.2,
        ) as gw,
        sdk(gw.url) as client,
    ):
        first = asyncio.create_task(client.chat.completions.create(**CHAT))  # type: ignore[arg-type]
        await wait_until(lambda: engine.in_flight == 1)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_waiter_gets_the_freed_replica(engine: FakeVllm) -> None:
    engine.token_delay_s = 0.05
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url}"],
            per_replica_max_in_flight=1,
            queue_timeout_s=5,
        ) as gw,
        sdk(gw.url) as client,
    ):
        replies = await asyncio.gather(
            *(client.completions.create(model="tiny", prompt="x", max_tokens=2) for _ in range(3))
        )
        assert all(r.choices[0].text == "t0 t1" for r in replies)
        assert engine.requests == 3


async def test_a_freed_slot_goes_to_a_waiter_that_can_use_it(
    engine: FakeVllm, spare: FakeVllm
) -> None:
    """The first in line waits for an adapter that only the busy replica has; a slot freed
    on the other replica goes to the request behind it at once, not after the wait."""
    spare.adapters = {"sql"}
    engine.hang = spare.hang = True
    queued = {"model": "tiny", "reason": "replica_cap"}
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url},{spare.url}#sql"],
            per_replica_max_in_flight=1,
            queue_timeout_s=30,
        ) as gw,
        sdk(gw.url) as client,
    ):
        registry = gw.gateway.metrics.registry

        def ask(model: str) -> asyncio.Task[object]:
            request = client.completions.create(model=model, prompt="x", max_tokens=2)
            return asyncio.create_task(request)

        holds_spare = ask("sql")
        await wait_until(lambda: spare.in_flight == 1)
        holds_engine = ask("tiny")
        await wait_until(lambda: engine.in_flight == 1)
        wants_sql = ask("sql")
        await wait_until(lambda: registry.get_sample_value("gateway_queued_requests", queued) == 1)
        wants_any = ask("tiny")
        await wait_until(lambda: registry.get_sample_value("gateway_queued_requests", queued) == 2)

        engine.hang = False
        holds_engine.cancel()  # the client leaves: the engine's slot is free
        reply = await wants_any
        assert reply.choices[0].text == "t0 t1"  # type: ignore[attr-defined]
        assert not wants_sql.done(), "the adapter request still waits for its replica"
        assert registry.get_sample_value("gateway_queued_requests", queued) == 1

        spare.hang = False
        holds_spare.cancel()
        assert (await wants_sql).choices[0].text == "t0 t1"  # type: ignore[attr-defined]
        await asyncio.gather(holds_spare, holds_engine, return_exceptions=True)


async def test_unreachable_replica_is_503_with_retry_after() -> None:
    async with (
        run_gateway(
            discovery="static", upstreams=[f"tiny={closed_port_url()}"], cold_start_hold_s=0
        ) as gw,
        sdk(gw.url) as client,
    ):
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        assert info.value.status_code == 503
        assert info.value.response.headers["retry-after"] == "2"
        # Ejected now: the next request is refused without trying it, also 503.
        with pytest.raises(openai.InternalServerError) as again:
            await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        assert again.value.status_code == 503
        async with aiohttp.ClientSession() as session, session.get(gw.url + "/readyz") as resp:
            assert resp.status == 503


async def test_first_byte_timeout_is_504(engine: FakeVllm) -> None:
    engine.hang = True
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url}"],
            first_byte_timeout_s=0.2,
            max_retries=0,
        ) as gw,
        sdk(gw.url) as client,
    ):
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        assert info.value.status_code == 504
        await wait_until(lambda: engine.cancelled == 1)


async def test_failure_before_first_byte_is_retried_elsewhere(
    engine: FakeVllm, spare: FakeVllm
) -> None:
    engine.fail_status = 503
    async with (
        run_gateway(
            discovery="static", upstreams=[f"tiny={engine.url},{spare.url}"], failures_to_eject=1
        ) as gw,
        sdk(gw.url) as client,
    ):
        for _ in range(4):
            reply = await client.completions.create(model="tiny", prompt="x", max_tokens=1)
            assert reply.choices[0].text == "t0"
        assert engine.requests == 1  # failed once, then ejected
        assert spare.requests == 4
        async with aiohttp.ClientSession() as session, session.get(gw.url + "/metrics") as resp:
            text = await resp.text()
        assert 'gateway_upstream_retries_total{model="tiny",reason="status"} 1.0' in text
        assert "gateway_replica_ejections_total" in text


async def test_streams_are_retried_before_their_first_byte(
    engine: FakeVllm, spare: FakeVllm
) -> None:
    engine.break_after_chunks = 0
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url},{spare.url}"]) as gw,
        sdk(gw.url) as client,
    ):
        for _ in range(2):
            stream = await client.completions.create(
                model="tiny", prompt="x", max_tokens=3, stream=True
            )
            assert "".join([c.choices[0].text async for c in stream]) == "t0 t1 t2 "


async def test_ejected_replica_is_readmitted(engine: FakeVllm, spare: FakeVllm) -> None:
    engine.fail_status = 500
    engine.fail_times = 1
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url},{spare.url}"],
            failures_to_eject=1,
            eject_cooldown_s=0.2,
            max_eject_cooldown_s=0.2,
        ) as gw,
        sdk(gw.url) as client,
    ):
        await client.completions.create(model="tiny", prompt="x", max_tokens=1)
        ejected = engine.requests
        assert ejected == 1  # it failed once...
        assert [r.health.ejected for r in gw.gateway.fleet.replicas()] == [True, False]
        await asyncio.sleep(0.3)
        for i in range(12):  # several prefixes: some hash to the re-admitted replica
            await client.completions.create(model="tiny", prompt=f"prompt {i}", max_tokens=1)
        assert engine.requests > ejected


async def test_a_stream_that_breaks_ends_with_an_error_event(engine: FakeVllm) -> None:
    engine.break_after_chunks = 2
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw,
        sdk(gw.url) as client,
    ):
        stream = await client.completions.create(
            model="tiny", prompt="x", max_tokens=5, stream=True
        )
        got: list[str] = []

        async def consume() -> None:
            async for chunk in stream:
                got.append(chunk.choices[0].text)

        with pytest.raises(openai.APIError, match="mid-way"):
            await consume()
        assert got == ["t0 ", "t1 "]


async def test_idle_stream_times_out_with_an_error_event(engine: FakeVllm) -> None:
    engine.token_delay_s = 0.2
    async with (
        run_gateway(
            discovery="static",
            upstreams=[f"tiny={engine.url}"],
            idle_timeout_s=0.05,
            first_byte_timeout_s=5,
        ) as gw,
        sdk(gw.url) as client,
    ):
        stream = await client.completions.create(
            model="tiny", prompt="x", max_tokens=5, stream=True
        )
        with pytest.raises(openai.APIError, match="stopped answering"):
            async for _ in stream:
                pass


async def test_client_disconnect_cancels_the_upstream(engine: FakeVllm) -> None:
    engine.token_delay_s = 0.05
    async with run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw:
        body = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 1000, "stream": True})
        async with aiohttp.ClientSession() as session:
            resp = await session.post(gw.url + "/v1/completions", data=body)
            assert resp.status == 200
            await resp.content.readany()
            resp.close()
        await wait_until(lambda: engine.cancelled == 1)
        await wait_until(lambda: gw.gateway.admission.used == 0)
        assert all(r.in_flight == 0 for r in gw.gateway.fleet.replicas())


async def test_client_disconnect_cancels_a_non_streaming_request(engine: FakeVllm) -> None:
    engine.hang = True
    async with run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw:
        async with aiohttp.ClientSession() as session:
            request = asyncio.create_task(
                session.post(gw.url + "/v1/completions", data=orjson.dumps(CHAT | {"prompt": "x"}))
            )
            await wait_until(lambda: engine.in_flight == 1)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
        await wait_until(lambda: engine.cancelled == 1)
        await wait_until(lambda: gw.gateway.admission.used == 0)


async def test_slow_body_is_408_and_others_are_unaffected(engine: FakeVllm) -> None:
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"], body_timeout_s=0.2) as gw,
        sdk(gw.url) as client,
    ):
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"model": '
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b'"tiny"')
        await writer.drain()
        reply = await client.completions.create(model="tiny", prompt="x", max_tokens=1)
        assert reply.choices
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 408")
        writer.close()
        await writer.wait_closed()


async def test_upstream_client_errors_pass_through(engine: FakeVllm) -> None:
    engine.fail_status = 400
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw,
        sdk(gw.url) as client,
    ):
        with pytest.raises(openai.BadRequestError, match="engine failure"):
            await client.completions.create(model="tiny", prompt="x")
        assert engine.requests == 1


def gateway_tasks() -> list[asyncio.Task[object]]:
    """Tasks running the gateway's request code (the engine's and client's are not counted)."""
    return [
        t for t in asyncio.all_tasks()
        if "data_plane/gateway/proxy" in str(t.get_coro())
        or "run_asgi" in str(t.get_coro()) or "_Watcher" in str(t.get_coro())
    ]  # fmt: skip


async def test_nothing_leaks_over_many_mixed_requests(engine: FakeVllm) -> None:
    """Good, bad, streamed, broken and abandoned requests: afterwards no slot, task or
    connection is left behind, and a plain request still works."""
    engine.token_delay_s = 0.002
    async with (
        run_gateway(discovery="static", upstreams=[f"tiny={engine.url}"]) as gw,
        aiohttp.ClientSession() as http,
    ):
        url = gw.url + "/v1/completions"
        ok = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 3})
        streamed = orjson.dumps({"model": "tiny", "prompt": "x", "max_tokens": 50, "stream": True})

        async def abandoned() -> None:
            resp = await http.post(url, data=streamed)
            await resp.content.readany()
            resp.close()

        async def plain(body: bytes) -> None:
            async with http.post(url, data=body) as resp:
                await resp.read()

        for _ in range(10):
            await asyncio.gather(
                *(plain(ok) for _ in range(10)),
                *(plain(b"{bad") for _ in range(5)),
                *(plain(orjson.dumps({"model": "nope", "prompt": "x"})) for _ in range(5)),
                *(abandoned() for _ in range(5)),
            )
        gateway = gw.gateway
        await wait_until(lambda: gateway.admission.used == 0)
        await wait_until(lambda: all(r.in_flight == 0 for r in gateway.fleet.replicas()))
        await wait_until(lambda: engine.in_flight == 0)
        await wait_until(lambda: not gateway_tasks())
        assert engine.cancelled == 50
        connector = gateway.session.connector
        assert connector is not None
        assert len(connector._acquired) == 0  # every upstream connection went back or closed
        await plain(ok)
