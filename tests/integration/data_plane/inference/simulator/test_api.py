"""The simulator's HTTP API over real loopback HTTP, with the official openai SDK as client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from data_plane.inference.simulator.runner import Fleet
from tests.support.simulator import sim_fleet


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    async with sim_fleet(profile="tiny", max_loras=2, max_lora_rank=8, seed=3) as fleet:
        yield fleet


@pytest.fixture
async def client(fleet: Fleet) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{fleet.urls[0]}/v1", api_key="unused", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _adapter_dir(root: Path, name: str, rank: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    config = {"r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


async def _post(
    http: aiohttp.ClientSession, url: str, body: Any, *, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def _metrics(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels`."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not in metrics")


async def test_completion_obeys_max_tokens_and_reports_usage(client: openai.AsyncOpenAI) -> None:
    answer = await client.completions.create(model="sim", prompt="Hello there", max_tokens=7)
    choice = answer.choices[0]
    assert answer.object == "text_completion"
    assert choice.finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 7
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 7
    assert len(choice.text.split()) == 7


async def test_chat_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": "Say something"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(content.split()) == 5
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


async def test_stamped_chunks_carry_their_send_time_only_when_asked(
    client: openai.AsyncOpenAI,
) -> None:
    """`--stamp-chunks` (for latency benchmarks) adds `hoist_sent_ns` on the host's
    monotonic clock, increasing chunk by chunk; by default no chunk has it."""

    async def sent_times(c: openai.AsyncOpenAI) -> list[int | None]:
        stream = await c.completions.create(model="sim", prompt="Hi", max_tokens=4, stream=True)
        return [(chunk.model_extra or {}).get("hoist_sent_ns") async for chunk in stream]

    assert await sent_times(client) == [None] * 4
    before = time.monotonic_ns()
    async with (
        sim_fleet(profile="tiny", stamp_chunks=True) as stamped,
        openai.AsyncOpenAI(base_url=f"{stamped.urls[0]}/v1", api_key="x", max_retries=0) as c,
    ):
        stamps = await sent_times(c)
    assert len(stamps) == 4
    assert all(isinstance(t, int) for t in stamps)
    assert before <= stamps[0] <= stamps[-1] <= time.monotonic_ns()  # type: ignore[operator]
    assert stamps == sorted(stamps)  # type: ignore[type-var]


async def test_n_choices_and_prompt_batches(client: openai.AsyncOpenAI) -> None:
    answer = await client.completions.create(
        model="sim", prompt=["one prompt", "another prompt"], max_tokens=3, n=2
    )
    assert sorted(c.index for c in answer.choices) == [0, 1, 2, 3]
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 12
    texts = {c.text for c in answer.choices}
    assert len(texts) == 4


async def test_stream_of_n_choices_interleaves_indices(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(
        model="sim", prompt="Hello", max_tokens=4, n=3, stream=True
    )
    texts: dict[int, str] = {}
    finishes: dict[int, str | None] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert sorted(texts) == [0, 1, 2]
    assert all(len(text.split()) == 4 for text in texts.values())
    assert finishes == {0: "length", 1: "length", 2: "length"}


async def test_stop_string_truncates_and_reports_it(client: openai.AsyncOpenAI) -> None:
    full = await client.completions.create(model="sim", prompt="Stop test", max_tokens=20)
    words = full.choices[0].text.split()
    stop = words[5]
    cut = await client.completions.create(
        model="sim", prompt="Stop test", max_tokens=20, stop=[stop]
    )
    choice = cut.choices[0]
    assert choice.finish_reason == "stop"
    assert stop not in choice.text
    assert full.choices[0].text.startswith(choice.text)
    assert choice.model_extra is not None
    assert choice.model_extra["stop_reason"] == stop


async def test_output_is_deterministic_per_seed() -> None:
    async with (
        sim_fleet(profile="tiny", seed=11, replicas=2) as same,
        sim_fleet(profile="tiny", seed=12) as other,
    ):
        texts = []
        for url in [*same.urls, *other.urls]:
            async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x") as client:
                answer = await client.completions.create(
                    model="sim", prompt="Determinism", max_tokens=12
                )
                texts.append(answer.choices[0].text)
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


async def test_adapters_load_list_serve_and_unload(
    fleet: Fleet, client: openai.AsyncOpenAI, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = fleet.urls[0]
    path = _adapter_dir(tmp_path, "sql", rank=8)
    status, body = await _post(
        http, f"{url}/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": str(path)}
    )
    assert (status, body) == (200, "Success: LoRA adapter 'sql' added successfully.")
    models = {m.id: m for m in (await client.models.list()).data}
    assert set(models) == {"sim", "sql"}
    assert models["sql"].model_extra is not None
    assert models["sql"].model_extra["parent"] == "sim"
    assert models["sim"].model_extra is not None
    assert models["sim"].model_extra["parent"] is None

    base = await client.completions.create(model="sim", prompt="Hi", max_tokens=8)
    tuned = await client.completions.create(model="sql", prompt="Hi", max_tokens=8)
    assert tuned.model == "sql"
    assert tuned.choices[0].text != base.choices[0].text
    assert 'running_lora_adapters=""' in await _metrics(http, url)
    assert 'max_lora="2"' in await _metrics(http, url)

    status, body = await _post(http, f"{url}/v1/unload_lora_adapter", {"lora_name": "sql"})
    assert (status, body) == (200, "Success: LoRA adapter 'sql' removed successfully.")
    with pytest.raises(openai.NotFoundError):
        await client.completions.create(model="sql", prompt="Hi", max_tokens=2)


_LOAD_ERRORS = {
    "missing-path": (
        {"lora_name": "ghost", "lora_path": "/nonexistent/adapter"},
        404,
        "NotFoundError",
        "Loading lora ghost failed: No adapter found for /nonexistent/adapter",
    ),
    "rank-too-large": (
        {"lora_name": "big", "lora_path": "RANK16"},
        500,
        "InternalServerError",
        "LoRA rank 16 is greater than max_lora_rank 8.",
    ),
    "no-name": ({"lora_path": "/x"}, 400, "Bad Request", "body.lora_name"),
    "base-name": (
        {"lora_name": "sim", "lora_path": "RANK8"},
        400,
        "InvalidUserInput",
        "conflicts with a served base model",
    ),
}


@pytest.mark.parametrize("case", list(_LOAD_ERRORS.values()), ids=list(_LOAD_ERRORS))
async def test_adapter_load_errors(
    fleet: Fleet, http: aiohttp.ClientSession, tmp_path: Path, case: tuple[Any, ...]
) -> None:
    body, status, err_type, message = case
    for rank in (8, 16):
        _adapter_dir(tmp_path, f"r{rank}", rank)
    if body.get("lora_path", "").startswith("RANK"):
        body = {**body, "lora_path": str(tmp_path / f"r{body['lora_path'][4:]}")}
    got_status, got = await _post(http, f"{fleet.urls[0]}/v1/load_lora_adapter", body)
    assert got_status == status
    assert got["error"]["type"] == err_type
    assert got["error"]["code"] == status
    assert message in got["error"]["message"]


async def test_adapter_load_and_unload_are_not_silently_idempotent(
    fleet: Fleet, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = fleet.urls[0]
    path = str(_adapter_dir(tmp_path, "a", 4))
    body = {"lora_name": "a", "lora_path": path}
    assert (await _post(http, f"{url}/v1/load_lora_adapter", body))[0] == 200
    status, again = await _post(http, f"{url}/v1/load_lora_adapter", body)
    assert status == 400
    assert again["error"]["type"] == "InvalidUserInput"
    assert "has already been loaded" in again["error"]["message"]
    inplace = {**body, "load_inplace": True}
    assert (await _post(http, f"{url}/v1/load_lora_adapter", inplace))[0] == 200
    status, missing = await _post(http, f"{url}/v1/unload_lora_adapter", {"lora_name": "zzz"})
    assert status == 404
    assert missing["error"] == {
        "message": "The lora adapter 'zzz' cannot be found.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }


async def test_unknown_model_is_a_404_in_openai_shape(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body == {
        "message": "The model `nope` does not exist. Valid aliases: sim.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


async def test_bad_input_never_stops_the_engine(
    fleet: Fleet, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    stream = await client.completions.create(
        model="sim", prompt="keep going", max_tokens=40, stream=True
    )
    bad: list[tuple[str, Any, bytes | None]] = [
        ("/v1/completions", None, b"{not json"),
        ("/v1/completions", None, b"\xff\xfe"),
        ("/v1/completions", [1, 2, 3], None),
        ("/v1/completions", {"prompt": "x", "max_tokens": -5}, None),
        ("/v1/completions", {"prompt": "x " * 5000}, None),
        ("/v1/chat/completions", {"messages": [{"content": 5}]}, None),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": "a"}, None),
        ("/v1/load_lora_adapter", "just a string", None),
        ("/v1/unload_lora_adapter", {"lora_name": 7}, None),
    ]
    results = await asyncio.gather(
        *(_post(http, f"{url}{path}", body, raw=raw) for path, body, raw in bad)
    )
    for status, body in results:
        assert status == 400, body
        assert set(body["error"]) == {"message", "type", "param", "code"}
    text = "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])
    assert len(text.split()) == 40
    async with http.get(f"{url}/v1/nothing") as response:
        assert response.status == 404
        assert await response.json() == {"detail": "Not Found"}
    async with http.get(f"{url}/v1/completions") as response:
        assert response.status == 405
        assert await response.json() == {"detail": "Method Not Allowed"}


async def test_metrics_follow_the_traffic(
    fleet: Fleet, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    prompt = "a fairly long shared prefix that fills a few blocks " * 8
    for _ in range(2):
        await client.completions.create(model="sim", prompt=prompt, max_tokens=4)
    metrics = await _metrics(http, url)
    labels = {"engine": "0", "model_name": "sim"}
    assert _sample(metrics, "vllm:request_success_total", finished_reason="length", **labels) == 2
    assert _sample(metrics, "vllm:time_to_first_token_seconds_count", **labels) == 2
    assert _sample(metrics, "vllm:inter_token_latency_seconds_count", **labels) == 6
    assert _sample(metrics, "vllm:generation_tokens_total", **labels) == 8
    queries = _sample(metrics, "vllm:prefix_cache_queries_total", **labels)
    hits = _sample(metrics, "vllm:prefix_cache_hits_total", **labels)
    assert hits > 0
    assert hits < queries
    assert _sample(metrics, "vllm:num_requests_running", **labels) == 0
    assert _sample(metrics, "vllm:kv_cache_usage_perc", **labels) == 0


async def test_a_client_that_leaves_aborts_its_request(
    fleet: Fleet, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    stream = await client.completions.create(
        model="sim", prompt="long story", max_tokens=400, stream=True
    )
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.close()
    labels = {"engine": "0", "model_name": "sim"}
    for _ in range(200):
        metrics = await _metrics(http, url)
        if _sample(metrics, "vllm:request_success_total", finished_reason="abort"):
            break
        await asyncio.sleep(0.01)
    assert _sample(metrics, "vllm:request_success_total", finished_reason="abort") == 1
    assert _sample(metrics, "vllm:num_requests_running", **labels) == 0
    assert _sample(metrics, "vllm:kv_cache_usage_perc", **labels) == 0
    answer = await client.completions.create(model="sim", prompt="still here", max_tokens=2)
    assert answer.choices[0].finish_reason == "length"


async def test_time_scale_runs_simulated_time_faster(http: aiohttp.ClientSession) -> None:
    """400 steps of 50 ms are 20 simulated seconds; at scale 2000 they pass in ~10 ms."""
    async with sim_fleet(profile="constant-20tps", time_scale=2000.0) as fast:
        url = fast.urls[0]
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x") as client:
            answer = await client.completions.create(model="sim", prompt="go", max_tokens=400)
        assert answer.usage is not None
        assert answer.usage.completion_tokens == 400
        metrics = await _metrics(http, url)
    assert _sample(metrics, "vllm:e2e_request_latency_seconds_sum") >= 400 * 0.05
    assert _sample(metrics, "vllm:inter_token_latency_seconds_count") == 399


async def test_streams_never_show_part_of_a_stop_string(client: openai.AsyncOpenAI) -> None:
    full = await client.completions.create(model="sim", prompt="Stop test", max_tokens=20)
    text = full.choices[0].text
    # A stop string that spans two tokens: the end of one word and the start of the next.
    boundary = text.index(" ", text.index(" ", 1) + 1)
    stop = text[boundary - 2 : boundary + 3]
    stream = await client.completions.create(
        model="sim", prompt="Stop test", max_tokens=20, stop=[stop], stream=True
    )
    pieces = [c.choices[0].text async for c in stream if c.choices]
    streamed = "".join(pieces)
    assert streamed == text[: text.index(stop)]
