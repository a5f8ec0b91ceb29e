"""Malformed adapter bodies are OpenAI's 400, never a 500 (issue 14's probe).

`{"metadata": "x", "spec": {}}` crashed the route with a plain-text 500, and a random-JSON
fuzz of `POST /v1/adapters` found 21 such 500s in 600 requests; schemathesis then found a
`metadata.generation` past 64 bits (the store could not encode it). All are replayed here
against the gateway in local mode (the adapter API writes to an admin API's store).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.fake_admin import FakeAdmin
from tests.support.gateway import RunningGateway, run_gateway

FUZZ_REQUESTS = 600


@pytest.fixture
async def admin() -> AsyncIterator[FakeAdmin]:
    a = FakeAdmin()
    a.add_model("llama", ["http://127.0.0.1:9"])
    await a.start()
    yield a
    await a.stop()


@pytest.fixture
async def gw(admin: FakeAdmin) -> AsyncIterator[RunningGateway]:
    async with run_gateway(discovery="local", admin_url=admin.url) as running:
        yield running


def assert_openai_error(status: int, body: bytes) -> dict[str, Any]:
    assert 400 <= status < 500, (status, body[:300])
    error = orjson.loads(body)["error"]
    assert isinstance(error["message"], str)
    assert error["type"] == "invalid_request_error"
    assert {"param", "code"} <= error.keys()
    return dict(error)


POST, PUT = "POST /v1/adapters", "PUT /v1/adapters/a"
SPEC = {"baseModel": "llama", "source": "/a"}


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        pytest.param(POST, {"metadata": "x", "spec": {}}, "metadata", id="metadata-a-string"),
        pytest.param(PUT, {"metadata": [None], "spec": {}}, "metadata", id="metadata-a-list"),
        pytest.param(POST, {"metadata": {"name": "a"}, "spec": "x"}, "spec", id="spec-a-string"),
        pytest.param(
            POST, {"metadata": {"name": 3}, "spec": {}}, "metadata.name", id="name-a-number"
        ),
        pytest.param(
            POST,
            {"name": "a", "baseModel": "llama", "source": "/a", "placement": 7},
            "spec.placement",
            id="flat-form-bad-placement",
        ),
        pytest.param(
            POST, {"baseModel": "llama", "source": "/a"}, "metadata.name", id="post-without-a-name"
        ),
        pytest.param(
            PUT,
            {"name": "b", "baseModel": "llama", "source": "/a"},
            "name",
            id="name-differs-from-path",
        ),
        pytest.param(
            POST,
            {"metadata": {"name": "a", "generation": 2**70}, "spec": SPEC},
            "metadata.generation",
            id="generation-past-64-bits",
        ),
        pytest.param(
            POST,
            {"metadata": {"name": "a", "note": {"n": 2**70}}, "spec": SPEC},
            "metadata",
            id="unknown-metadata-past-64-bits",
        ),
        pytest.param(POST, "[1, 2]", None, id="not-an-object"),
        pytest.param(POST, "{", None, id="not-json"),
        pytest.param(POST, "", None, id="empty"),
    ],
)
async def test_a_malformed_body_is_a_400_naming_the_field(
    gw: RunningGateway, admin: FakeAdmin, route: str, body: object, param: str | None
) -> None:
    method, path = route.split()
    data = body if isinstance(body, str) else json.dumps(body)  # orjson refuses 2**70
    headers = {"content-type": "application/json"}
    async with (
        aiohttp.ClientSession(base_url=gw.url) as http,
        http.request(method, path, data=data, headers=headers) as resp,
    ):
        error = assert_openai_error(resp.status, await resp.read())
    assert error["param"] == param
    assert admin.adapters == {}


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**40), 2**40)
    if kind == 3:
        return rng.choice(["", "x", "llama", "a/b", "s3://b/k", "ftp://x", "Bad_Name", "é"])
    if kind == 4:
        return rng.random() * 1e6
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["metadata", "spec", "name", "baseModel", "source", "placement", "sha256", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_body(rng: random.Random) -> Any:
    """Adapter-shaped JSON with wrong types anywhere (documents, flat forms, anything)."""
    shape = rng.randrange(3)
    if shape == 0:
        return {"metadata": random_json(rng, 2), "spec": random_json(rng, 2)}
    if shape == 1:
        return {
            "name": random_json(rng, 2),
            "baseModel": rng.choice(["llama", random_json(rng, 2)]),
            "source": random_json(rng, 2),
            "placement": random_json(rng, 2),
        }
    return random_json(rng)


async def test_random_json_never_fails_the_server(gw: RunningGateway) -> None:
    rng = random.Random(14)
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(base_url=gw.url) as http:
        for i in range(FUZZ_REQUESTS):
            method, path = ("POST", "/v1/adapters") if i % 2 else ("PUT", "/v1/adapters/fuzz")
            async with http.request(method, path, json=random_body(rng)) as resp:
                payload = await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status >= 400:
                assert_openai_error(resp.status, payload)
    assert sum(statuses.values()) == FUZZ_REQUESTS
    assert statuses.get(400, 0) > FUZZ_REQUESTS // 2, statuses


async def test_the_key_is_checked_before_the_body(admin: FakeAdmin) -> None:
    """Without a valid key, a malformed body is a 401: the body is not looked at."""
    async with (
        run_gateway(discovery="local", admin_url=admin.url, api_keys=["s3cret"]) as gw,
        aiohttp.ClientSession(base_url=gw.url) as http,
    ):
        bad = {"metadata": "x", "spec": {}}
        async with http.post("/v1/adapters", json=bad) as resp:
            assert resp.status == 401
            assert orjson.loads(await resp.read())["error"]["type"] == "authentication_error"
        headers = {"authorization": "Bearer s3cret"}
        async with http.post("/v1/adapters", json=bad, headers=headers) as resp:
            assert_openai_error(resp.status, await resp.read())
