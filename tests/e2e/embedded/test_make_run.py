"""What `make run` does, as the README tells a user: prepare SmolLM2-135M-Instruct, start
the embedded default from examples/embedded with the real vLLM engine on CPU, and ask it
the README's question through the gateway with the official OpenAI SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.support.embedded import EmbeddedStack, running_embedded, wait_until

ROOT = Path(__file__).resolve().parents[3]
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    root = tmp_path_factory.mktemp("make-run")
    repository = root / "models"
    env = {"MODEL_REPOSITORY": str(repository)}
    prepared = subprocess.run(
        [sys.executable, "-m", "data_plane.inference.engine_api.prepare", MODEL],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    documents = list(
        yaml.safe_load_all((ROOT / "examples" / "embedded" / "model.yaml").read_text())
    )
    with running_embedded(root, documents, env=env, ready_timeout_s=600) as running:
        yield running


def test_the_readme_question_gets_a_sensible_answer(stack: EmbeddedStack) -> None:
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=32,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_models_lists_the_served_model(stack: EmbeddedStack) -> None:
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0)
    assert MODEL in {m.id for m in client.models.list()}


def test_the_readme_demo_adapter_changes_the_answer(stack: EmbeddedStack) -> None:
    source = Path(stack.env["HOIST_HOME"]) / "adapter-sources" / "smollm2-demo"  # as the README
    made = subprocess.run(
        [sys.executable, "-m", "data_plane.inference.engine_api.prepare", MODEL, "--demo-adapter", str(source)],
        env=stack.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    created = httpx.post(
        f"{stack.gateway_url}/v1/adapters",
        json={"name": "smollm2-demo", "baseModel": MODEL, "source": str(source)},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    wait_until(
        lambda: stack.adapter_phase("smollm2-demo") == "Ready", "the demo adapter to load", 180
    )

    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0)
    question = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write one sentence about the sea."},
    ]

    def answer(model: str) -> str | None:
        try:
            reply = client.chat.completions.create(
                model=model, messages=question, max_tokens=24, temperature=0
            )  # type: ignore[arg-type]
        except openai.APIStatusError:
            return None  # not routable yet: the gateway learns placements within a poll
        return reply.choices[0].message.content

    wait_until(lambda: answer("smollm2-demo") is not None, "the gateway to route the adapter", 30)
    assert answer("smollm2-demo") != answer(MODEL)
