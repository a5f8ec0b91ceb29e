"""The gateway's block index follows a real simulator process publishing KV-cache events
over ZMQ on 127.0.0.1, the precise prefix scorer reads it, and a gateway with a
`precise-prefix` Model follows its replicas from discovery and closes them at stop."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import openai
import orjson
import pytest
import zmq
import zmq.asyncio

from data_plane.gateway.kv_events.follower import KvEventFollower
from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.prompt_tokens import SimulatorPromptTokens
from data_plane.gateway.kv_events.scorer import PrecisePrefixScorer
from data_plane.gateway.kv_events.wire import batch_decoder, sequence_number
from data_plane.gateway.routing.policy import RouteRequest
from tests.support.gateway import run_gateway
from tests.support.ports import free_port_block
from tests.support.simulator import running_sim_process

_WAIT_S = 30.0  # generous: a loaded 2-core CI machine


@dataclass
class Candidate:
    name: str
    url: str
    in_flight: int = 0
    waiting: int = 0
    running_adapters: frozenset[str] | None = None
    max_loras: int = 1


MESSAGES = [
    {"role": "system", "content": " ".join(["Answer briefly and cite the tables you use."] * 12)},
    {"role": "user", "content": "Which index serves a range query on created_at?"},
]


def _sim_args(events_port: int) -> list[str]:
    config = {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": f"tcp://*:{events_port}",
        "replay_endpoint": f"tcp://*:{events_port + 2}",
        "topic": "kv",
    }
    return [
        "--served-model-name", "sim", "--profile", "tiny", "--time-scale", "10",
        "--kv-events-config", json.dumps(config),
    ]  # fmt: skip


async def _until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WAIT_S
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"not in time: {what}"
        await asyncio.sleep(0.05)


async def test_the_index_follows_a_simulator_and_scores_the_replica_that_served(
    tmp_path: Path,
) -> None:
    events_port = free_port_block(4)
    with running_sim_process(
        _sim_args(events_port), log_path=tmp_path / "sim.log", replicas=2
    ) as sim:
        http_port = int(sim.urls[0].rsplit(":", 1)[1])
        index = KvBlockIndex()
        follower = KvEventFollower(index, port_offset=events_port - http_port, topic="kv")
        candidates = [Candidate(f"r{i}", url) for i, url in enumerate(sim.urls)]
        scorer = PrecisePrefixScorer(index, SimulatorPromptTokens())
        request = RouteRequest(
            None, "", body=orjson.dumps({"model": "sim", "messages": MESSAGES, "max_tokens": 4})
        )
        try:
            follower.follow(candidates)
            assert sorted(follower.followed()) == ["r0", "r1"]
            await asyncio.sleep(0.5)  # ZMQ's slow joiner: let the SUB sockets connect
            async with openai.AsyncOpenAI(
                base_url=f"{sim.urls[1]}/v1", api_key="unused", timeout=30
            ) as client:
                await client.chat.completions.create(
                    model="sim",
                    messages=MESSAGES,  # type: ignore[arg-type]
                    max_tokens=4,
                )
            await _until(lambda: scorer.score(candidates, request)[1] > 0.9, "r1's blocks")
            scores = scorer.score(candidates, request)
            assert scores[0] == 0.0  # r0 served nothing
            assert scores[1] == 1.0  # every full block of the prompt is on r1
            assert index.num_blocks("r0") == 0

            # A replica no longer followed is unsubscribed and forgotten.
            follower.follow(candidates[:1])
            assert follower.followed() == ["r0"]
            assert index.num_blocks("r1") == 0
        finally:
            await follower.close()

        # The replay socket hands back every kept batch from a sequence number on.
        context = zmq.asyncio.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        try:
            dealer.connect(f"tcp://127.0.0.1:{events_port + 3}")  # engine 1's replay socket
            await dealer.send_multipart((b"", (0).to_bytes(8, "big")))
            seqs = []
            decoder = batch_decoder()
            while True:
                frames = await asyncio.wait_for(dealer.recv_multipart(), _WAIT_S)
                _, topic, seq, payload = frames
                if sequence_number(seq) == -1:
                    break
                assert topic == b"kv"
                assert decoder.decode(payload).events
                seqs.append(sequence_number(seq))
            assert seqs
            assert seqs == list(range(len(seqs)))
        finally:
            dealer.close()
            context.term()


def _routed(text: str, reason: str) -> float:
    """The count of precise-prefix decisions for `sim` with `reason`, from /metrics text."""
    head = (
        f'gateway_routing_decisions_total{{model="sim",policy="precise-prefix",reason="{reason}"}}'
    )
    for line in text.splitlines():
        if line.startswith(head):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_gateway_follows_its_precise_prefix_replicas_and_routes_to_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_port = free_port_block(4)
    with running_sim_process(
        _sim_args(events_port), log_path=tmp_path / "sim.log", replicas=2
    ) as sim:
        http_port = int(sim.urls[0].rsplit(":", 1)[1])
        monkeypatch.setenv("HOIST_GATEWAY_KV_EVENTS_PORT_OFFSET", str(events_port - http_port))
        monkeypatch.setenv("HOIST_GATEWAY_KV_EVENTS_TOPIC", "kv")
        state = tmp_path / "state.json"
        replicas = [{"name": f"r{i}", "engineUrl": u} for i, u in enumerate(sim.urls)]
        model = {"name": "sim", "routingPolicy": "precise-prefix", "replicas": replicas}
        state.write_text(json.dumps({"models": [model]}))
        async with run_gateway(discovery="static", upstreams_file=state) as running:
            kv = running.gateway.kv_events
            assert kv.follower is not None
            assert kv.index is not None
            index = kv.index
            assert sorted(kv.follower.followed()) == ["r0", "r1"]
            await asyncio.sleep(0.5)  # ZMQ's slow joiner: let the SUB sockets connect
            async with openai.AsyncOpenAI(
                base_url=f"{running.url}/v1", api_key="unused", timeout=30
            ) as client:
                await client.chat.completions.create(
                    model="sim",
                    messages=MESSAGES,  # type: ignore[arg-type]
                    max_tokens=4,
                )
                await _until(lambda: index.num_blocks("r0") + index.num_blocks("r1") > 0, "blocks")
                holder = "r0" if index.num_blocks("r0") else "r1"
                assert index.num_blocks("r1" if holder == "r0" else "r0") == 0
                for _ in range(3):
                    await client.chat.completions.create(
                        model="sim",
                        messages=MESSAGES,  # type: ignore[arg-type]
                        max_tokens=4,
                    )
                async with running.gateway.session.get(f"{running.url}/metrics") as response:
                    text = await response.text()
            assert _routed(text, "kv-miss-ring") == 1.0  # the first, before any event
            assert _routed(text, "kv-hit") == 3.0  # the others went to the holder
            assert index.num_blocks("r1" if holder == "r0" else "r0") == 0
        assert kv.follower is None  # stop closed it (and its ZMQ context)


async def test_a_gateway_without_precise_prefix_models_opens_no_event_socket() -> None:
    async with run_gateway(discovery="static", upstreams=["m=http://127.0.0.1:9"]) as running:
        kv = running.gateway.kv_events
        assert kv.index is not None  # KV events are on, but no Model routes by them
        assert kv.follower is None
