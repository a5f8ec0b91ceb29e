"""Embeddings from the real vLLM engine on CPU, as examples/embeddings declares them:
SmolLM2-135M-Instruct's weights under `task: embed` (vLLM's pooling runner), started by
`hoist up`, asked with the official OpenAI SDK through the gateway's `/v1/embeddings`
(and the engine directly, to show what the gateway passes on).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from tests.support.embedded import EmbeddedStack, running_embedded

ROOT = Path(__file__).resolve().parents[3]
SOURCE = "smollm2-135m-instruct"
MODEL = "smollm2-135m-embed"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    root = tmp_path_factory.mktemp("embeddings")
    env = {"MODEL_REPOSITORY": str(root / "models")}
    prepared = subprocess.run(
        [sys.executable, "-m", "data_plane.inference.engine_api.prepare", SOURCE],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    documents = list(
        yaml.safe_load_all((ROOT / "examples" / "embeddings" / "model.yaml").read_text())
    )
    with running_embedded(root, documents, env=env, ready_timeout_s=600) as running:
        yield running


@pytest.fixture(params=["gateway", "engine"])
def engine(stack: EmbeddedStack, request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    if request.param == "gateway":
        base_url = stack.gateway_url
    else:
        (replica,) = stack.replicas()
        base_url = replica["engineUrl"]
    with openai.OpenAI(
        base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as sdk:
        yield sdk


def test_two_inputs_give_two_vectors_of_one_length(engine: openai.OpenAI) -> None:
    texts = ["The capital of France is Paris.", "Bananas are yellow."]
    reply = engine.embeddings.create(model=MODEL, input=texts)
    assert reply.model == MODEL
    assert [d.index for d in reply.data] == [0, 1]
    first, second = (d.embedding for d in reply.data)
    assert len(first) == len(second) > 0
    assert all(math.isfinite(x) for x in first + second)
    assert first != second
    assert reply.usage.prompt_tokens > 0


def test_the_same_text_embeds_the_same_way(engine: openai.OpenAI) -> None:
    text = "Hoist serves embeddings behind the same gateway."
    once = engine.embeddings.create(model=MODEL, input=text).data[0].embedding
    again = engine.embeddings.create(model=MODEL, input=[text]).data[0].embedding
    assert len(once) == len(again)
    assert max(abs(a - b) for a, b in zip(once, again, strict=True)) < 1e-4


def test_an_embedding_model_does_not_chat(engine: openai.OpenAI) -> None:
    """The pooling runner serves no generation: the engine has no chat route for it."""
    with pytest.raises(openai.APIStatusError) as refused:
        engine.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert refused.value.status_code in (400, 404)
