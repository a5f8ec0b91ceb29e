"""The embedded default end to end: `hoist up` with the real gateway, sidecars and
simulated engines, driven as a user would, with the official OpenAI SDK and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.embedded import (
    EmbeddedStack,
    adapter_doc,
    model_doc,
    running_embedded,
    sim_adapter_dir,
    wait_until,
)

MODEL = "tiny"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    root = tmp_path_factory.mktemp("embedded")
    sql = sim_adapter_dir(root, "sql")
    documents = [
        model_doc(MODEL, replicas=2, lora={"maxLoras": 2}),
        adapter_doc("sql", MODEL, str(sql)),
    ]
    with running_embedded(root, documents) as running:
        wait_until(lambda: running.adapter_phase("sql") == "Ready", "sql to be Ready", 60)
        # The gateway learns placements from the supervisor's state within its poll interval.
        wait_until(lambda: _routable(running, "sql"), "the gateway to route sql", 30)
        yield running


def _routable(stack: EmbeddedStack, model: str, status: int = 200) -> bool:
    """Every gateway worker routes `model` (answers `status` for it): `hoist up` runs one per core, each learning the
    fleet on its own poll, and each request here is a new connection, which the kernel
    gives to any of them (SO_REUSEPORT). 16 answers in a row leave a 2^-15 chance that a
    worker which does not know it yet was never asked."""
    for _ in range(16):
        got, _ = _send(
            "POST",
            f"{stack.gateway_url}/v1/completions",
            {"model": model, "prompt": "x", "max_tokens": 1},
        )
        if got != status:
            return False
    return True


@pytest.fixture
def client(stack: EmbeddedStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0
    ) as client:
        yield client


def _send(method: str, url: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_models_list_the_base_model_and_its_adapter(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert MODEL in models
    assert (models["sql"].model_extra or {}).get("parent") == MODEL


@pytest.mark.parametrize("model", [MODEL, "sql"])
def test_chat_through_the_gateway(client: openai.OpenAI, model: str) -> None:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say something."}], max_tokens=8
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 8


def test_streaming_completion_with_usage(client: openai.OpenAI) -> None:
    stream = client.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=6, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6


def test_unknown_model_is_an_openai_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404
    body = caught.value.body
    assert isinstance(body, dict)
    assert {"message", "type", "param", "code"} <= set(body)


def test_adapter_added_through_the_gateway_is_placed_used_and_removed(
    stack: EmbeddedStack, client: openai.OpenAI
) -> None:
    source = sim_adapter_dir(Path(stack.env["HOIST_ADAPTER_SOURCE_ROOTS"]), "chat")
    status, created = _send(
        "POST",
        f"{stack.gateway_url}/v1/adapters",
        {"name": "chat", "baseModel": MODEL, "source": str(source)},
    )
    assert status == 201, created
    wait_until(lambda: stack.adapter_phase("chat") == "Ready", "chat to be Ready", 60)
    assert all("chat" in r["adapters"] for r in stack.replicas())
    wait_until(lambda: _routable(stack, "chat"), "the gateway to route chat", 30)
    reply = client.completions.create(model="chat", prompt="Hi", max_tokens=4)
    assert reply.choices[0].text

    status, _ = _send("DELETE", f"{stack.gateway_url}/v1/adapters/chat")
    assert status == 200
    assert stack.adapter_phase("chat") is None
    wait_until(
        lambda: "chat" not in {m.id for m in client.models.list()}, "chat to leave /v1/models", 30
    )
    wait_until(lambda: _routable(stack, "chat", 404), "every worker to forget chat", 30)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="chat", prompt="Hi", max_tokens=4)


def test_a_bad_adapter_is_refused_with_the_field(stack: EmbeddedStack) -> None:
    status, body = _send(
        "POST",
        f"{stack.gateway_url}/v1/adapters",
        {"name": "bad", "baseModel": "nowhere", "source": "/x"},
    )
    assert status == 400
    error = body["error"]
    assert isinstance(error, dict)
    assert "nowhere" in str(error["message"])


def test_hoist_status_shows_replicas_and_adapters(stack: EmbeddedStack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "control_plane.cli", "status"],
        env={**stack.env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for expected in (f"{MODEL}-0", f"{MODEL}-1", "sql", "Ready"):
        assert expected in done.stdout


def test_an_engine_restart_gets_its_adapters_back(
    stack: EmbeddedStack, client: openai.OpenAI
) -> None:
    replica = stack.replicas()[0]
    os.killpg(replica["enginePid"], signal.SIGKILL)

    def restored() -> bool:
        now = next(r for r in stack.replicas() if r["name"] == replica["name"])
        return bool(
            now["ready"] and now["enginePid"] != replica["enginePid"] and "sql" in now["adapters"]
        )

    wait_until(restored, "the engine to restart and hold sql again", 90)
    wait_until(lambda: _routable(stack, "sql"), "the gateway to route sql again", 30)
    reply = client.completions.create(model="sql", prompt="Hi", max_tokens=4)
    assert reply.choices[0].text
