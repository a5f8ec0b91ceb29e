"""`s3://` and `hf://` sources through the real sidecar process, against real APIs on loopback.

S3 is moto's server (the S3 API botocore and obstore speak), the Hub a stand-in of its
download API (`tests/support/hf_hub.py`); the engine is the simulator, and what is fetched
is a real PEFT adapter. Both stores are the operator's (configured by `AWS_ENDPOINT_URL`
and `HF_ENDPOINT`), so loopback is where they are allowed to be: a tenant names only a
bucket and key, or a repository.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from data_plane.inference.sidecar_runtime.fetch_files import tree_digest
from tests.integration.data_plane.inference.sidecar_runtime.conftest import Sidecar, run_sidecar
from tests.support.hf_hub import StandInHub
from tests.support.s3_server import AMBIENT_KEY_ID, MotoS3, RecordingProxy, moto_s3
from tests.support.simulator import SimProcess, running_sim_process
from tests.support.tiny_model import build_lora_adapter, build_tiny_model

BUCKET = "adapters"
TENANT_KEY_ID = "AKIATENANTSECRETREF"
TENANT_SECRET = "tenant-secret-value-4b1d"
HF_TOKEN = "hf_tenant_token_9e2c"


@pytest.fixture(scope="module")
def peft_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter (peft) for a tiny random Llama: adapter_config.json + weights."""
    root = tmp_path_factory.mktemp("peft")
    return build_lora_adapter(build_tiny_model(root / "model"), root / "adapter")


@pytest.fixture(scope="module")
def archive(peft_adapter: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(peft_adapter, arcname="sql-adapter")
    return out.getvalue()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    args = ["--served-model-name", "base", "--max-loras", "4", "--max-lora-rank", "16"]
    with running_sim_process(args, log_path=log) as process:
        yield process


@pytest.fixture(scope="module")
def s3(peft_adapter: Path, archive: bytes) -> Iterator[MotoS3]:
    with moto_s3() as store:
        store.bucket(BUCKET)
        store.put(BUCKET, "team-a/sql.tar.gz", archive)
        for path in sorted(p for p in peft_adapter.rglob("*") if p.is_file()):
            store.put(BUCKET, f"team-a/chat/{path.relative_to(peft_adapter)}", path.read_bytes())
        store.put(BUCKET, "team-a/huge.bin", b"\0" * 200_000)  # past the sidecar's cap
        yield store


@pytest.fixture
async def proxy(s3: MotoS3) -> AsyncIterator[RecordingProxy]:
    recorder = RecordingProxy(s3.url)
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.stop()


@contextlib.asynccontextmanager
async def sidecar(
    sim: SimProcess, tmp_path: Path, env: dict[str, str], **policy: str
) -> AsyncIterator[Sidecar]:
    async with run_sidecar(
        sim.urls[0], tmp_path / "adapters", tmp_path / "sidecar.log", env, **policy
    ) as process:
        yield process


async def put(side: Sidecar, name: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.put(f"{side.url}/adapters/{name}", json=body)


async def complete(sim: SimProcess, model: str) -> str:
    client = openai.AsyncOpenAI(base_url=f"{sim.urls[0]}/v1", api_key="unused", max_retries=0)
    try:
        reply = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=4
        )
    finally:
        await client.close()
    assert reply.model == model
    return reply.choices[0].message.content or ""


async def test_an_s3_archive_is_fetched_verified_and_served(
    sim: SimProcess, s3: MotoS3, archive: bytes, tmp_path: Path
) -> None:
    sha = hashlib.sha256(archive).hexdigest()
    async with sidecar(sim, tmp_path, s3.env()) as side:
        resp = await put(side, "sql-s3", source=f"s3://{BUCKET}/team-a/sql.tar.gz", sha256=sha)
        assert resp.status_code == 200, resp.text
        assert resp.json()["phase"] == "Loaded"
        assert resp.json()["sha256"] == sha
    installed = tmp_path / "adapters" / "adapters" / "sql-s3" / sha[:16]
    assert (installed / "adapter_model.safetensors").is_file()
    assert await complete(sim, "sql-s3")


async def test_an_s3_prefix_is_an_unpacked_adapter(
    sim: SimProcess, s3: MotoS3, peft_adapter: Path, tmp_path: Path
) -> None:
    sha = tree_digest(peft_adapter)
    async with sidecar(sim, tmp_path, s3.env()) as side:
        resp = await put(side, "chat-s3", source=f"s3://{BUCKET}/team-a/chat/", sha256=sha)
        assert resp.status_code == 200, resp.text
        assert resp.json()["sha256"] == sha
    assert await complete(sim, "chat-s3")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("s3://adapters/team-a/gone.tar.gz", (422, "SourceNotFound", "no such object"),
                     id="missing-object"),
        pytest.param("s3://adapters/team-a/nothing/", (422, "SourceNotFound", "no object under"),
                     id="missing-prefix"),
        pytest.param("s3://no-such-bucket/a.tar.gz", (422, "SourceNotFound", "no such object"),
                     id="missing-bucket"),
        pytest.param("s3://adapters/team-a/huge.bin", (413, "AdapterTooLarge", "size cap"),
                     id="over-the-cap"),
    ],
)  # fmt: skip
async def test_what_s3_cannot_give_is_a_clear_refusal(
    sim: SimProcess, s3: MotoS3, tmp_path: Path, source: str, expected: tuple[int, str, str]
) -> None:
    status, reason, says = expected
    async with sidecar(sim, tmp_path, s3.env()) as side:
        resp = await put(side, "missing", source=source)
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["reason"] == reason
        assert says in error["message"]
        assert "127.0.0.1" not in error["message"]  # nothing of the operator's endpoint
        assert list((tmp_path / "adapters" / ".staging").iterdir()) == []


async def test_a_wrong_checksum_is_refused_and_nothing_is_loaded(
    sim: SimProcess, s3: MotoS3, tmp_path: Path
) -> None:
    async with sidecar(sim, tmp_path, s3.env()) as side:
        resp = await put(side, "wrong-sum", source=f"s3://{BUCKET}/team-a/chat/", sha256="0" * 64)
        assert resp.status_code == 422
        assert resp.json()["error"]["reason"] == "DigestMismatch"
        async with httpx.AsyncClient() as client:
            models = (await client.get(f"{sim.urls[0]}/v1/models")).json()["data"]
    assert "wrong-sum" not in {m["id"] for m in models}
    assert not (tmp_path / "adapters" / "adapters" / "wrong-sum").exists()


async def test_the_secrets_credentials_sign_the_fetch_and_are_never_shown(
    sim: SimProcess, s3: MotoS3, proxy: RecordingProxy, tmp_path: Path
) -> None:
    credentials = {"AWS_ACCESS_KEY_ID": TENANT_KEY_ID, "AWS_SECRET_ACCESS_KEY": TENANT_SECRET}
    async with sidecar(sim, tmp_path, s3.env(proxy.url)) as side:
        ok = await put(
            side, "signed", source=f"s3://{BUCKET}/team-a/sql.tar.gz", credentials=credentials
        )
        assert ok.status_code == 200, ok.text
        assert set(proxy.key_ids) == {TENANT_KEY_ID}
        proxy.key_ids.clear()
        ambient = await put(side, "ambient", source=f"s3://{BUCKET}/team-a/sql.tar.gz")
        assert ambient.status_code == 200, ambient.text
        assert set(proxy.key_ids) == {AMBIENT_KEY_ID}
        failed = await put(
            side, "gone", source=f"s3://{BUCKET}/team-a/gone.tgz", credentials=credentials
        )
        assert failed.status_code == 422
        async with httpx.AsyncClient() as client:
            shown = [
                failed.text,
                ok.text,
                (await client.get(f"{side.url}/adapters")).text,
                (await client.get(f"{side.url}/metrics")).text,
            ]
    shown += [side.log.read_text(), (tmp_path / "adapters" / "state.json").read_text()]
    for text in shown:
        assert TENANT_SECRET not in text
        assert TENANT_KEY_ID not in text


async def test_s3_is_refused_where_the_policy_does_not_allow_it(
    sim: SimProcess, s3: MotoS3, proxy: RecordingProxy, tmp_path: Path
) -> None:
    async with sidecar(sim, tmp_path, s3.env(proxy.url), schemes="https file") as side:
        for source in (f"s3://{BUCKET}/team-a/sql.tar.gz", "hf://org/sql-adapter"):
            resp = await put(side, "refused", source=source)
            assert resp.status_code == 422
            assert resp.json()["error"]["reason"] == "SourceNotAllowed"
    assert proxy.key_ids == []


@pytest.fixture
async def hub(peft_adapter: Path) -> AsyncIterator[StandInHub]:
    stand_in = StandInHub()
    stand_in.add_folder("org/sql-adapter", peft_adapter)
    stand_in.add_folder("org/private-adapter", peft_adapter, token=HF_TOKEN)
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.stop()


async def test_a_hub_repository_is_fetched_at_its_revision_and_served(
    sim: SimProcess, hub: StandInHub, peft_adapter: Path, tmp_path: Path
) -> None:
    commit = hub.repos["org/sql-adapter"].commit
    sha = tree_digest(peft_adapter)
    async with sidecar(sim, tmp_path, {"HF_ENDPOINT": hub.url}) as side:
        resp = await put(side, "sql-hf", source=f"hf://org/sql-adapter@{commit}", sha256=sha)
        assert resp.status_code == 200, resp.text
        latest = await put(side, "sql-hf-main", source="hf://org/sql-adapter", sha256=sha)
        assert latest.status_code == 200, latest.text
    assert await complete(sim, "sql-hf")
    assert all(path.startswith(("/api/models/org/", "/org/")) for _, path, _ in hub.requests)


async def test_a_private_repository_needs_the_secrets_token(
    sim: SimProcess, hub: StandInHub, tmp_path: Path
) -> None:
    source = "hf://org/private-adapter@main"
    async with sidecar(sim, tmp_path, {"HF_ENDPOINT": hub.url}) as side:
        anonymous = await put(side, "private", source=source)
        assert anonymous.status_code == 422
        assert anonymous.json()["error"]["reason"] == "SourceNotFound"
        assert {auth for _, _, auth in hub.requests} == {None}
        resp = await put(side, "private", source=source, credentials={"HF_TOKEN": HF_TOKEN})
        assert resp.status_code == 200, resp.text
        assert {auth for _, _, auth in hub.requests[1:]} == {f"Bearer {HF_TOKEN}"}
        missing = await put(
            side, "nope", source="hf://org/nope", credentials={"HF_TOKEN": HF_TOKEN}
        )
        assert missing.status_code == 422
        assert "hf://org/nope@main" in missing.json()["error"]["message"]
    for text in (anonymous.text, resp.text, missing.text, side.log.read_text()):
        assert HF_TOKEN not in text
