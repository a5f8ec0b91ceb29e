"""Tenants in the embedded default: the same YAML with `hoist up -f` plus a key file.

Real processes throughout (supervisor, simulated engine, sidecar, gateway), the official
OpenAI SDK with one key per tenant, and at the end every log line of the run is searched
for the keys.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import openai
import pytest

from tests.support.embedded import API_VERSION, model_doc, running_embedded

KEY_A = "sk-embedded-alpha-5e4d3c2b1a"
KEY_B = "sk-embedded-bravo-9f8e7d6c5b"


def tenant_doc(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def test_tenants_declared_with_hoist_up(tmp_path: Path) -> None:
    keys = tmp_path / "tenant-keys.txt"
    hashed_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    keys.write_text(f"team-a: {KEY_A}\nteam-b: sha256:{hashed_b}\n")
    documents = [
        model_doc("tiny"),
        model_doc("b-private", tenant="team-b"),
        tenant_doc("team-a", allowedModels=["tiny"], quotas={"requestsPerMinute": 2}),
        tenant_doc("team-b", apiKeysSecret={"name": "team-b-keys"}),
    ]
    env = {"HOIST_GATEWAY_TENANT_KEYS_FILE": str(keys), "LOG_LEVEL": "DEBUG"}
    with running_embedded(tmp_path, documents, env=env) as stack:
        assert [t["metadata"]["name"] for t in stack.state()["tenants"]] == ["team-a", "team-b"]
        url = stack.gateway_url + "/v1"
        with (
            openai.OpenAI(base_url=url, api_key=KEY_A, max_retries=0) as a,
            openai.OpenAI(base_url=url, api_key=KEY_B, max_retries=0) as b,
            openai.OpenAI(base_url=url, api_key="sk-not-a-key-at-all", max_retries=0) as nobody,
        ):
            assert {m.id for m in a.models.list()} == {"tiny"}
            assert {m.id for m in b.models.list()} == {"tiny", "b-private"}
            with pytest.raises(openai.AuthenticationError):
                nobody.completions.create(model="tiny", prompt="x", max_tokens=1)
            with pytest.raises(openai.NotFoundError):
                a.completions.create(model="b-private", prompt="x", max_tokens=1)
            b.completions.create(model="b-private", prompt="x", max_tokens=1)
            stream = a.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=3,
                stream=True,
            )
            assert all(chunk.usage is None for chunk in stream)
            a.completions.create(model="tiny", prompt="x", max_tokens=1)
            with pytest.raises(openai.RateLimitError):
                a.completions.create(model="tiny", prompt="x", max_tokens=1)
    logs = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".txt", "")]
    logs = [p for p in logs if p != keys]
    assert any(p.suffix == ".log" for p in logs)
    for path in logs:
        text = path.read_bytes()
        for key in (KEY_A, KEY_B, "sk-not-a-key-at-all"):
            assert key.encode() not in text, f"{key[:6]}... found in {path}"
