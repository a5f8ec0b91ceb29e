"""The inference pod end to end: real vLLM (CPU) under engine_api, and the sidecar.

Tests share one pod (see conftest) and leave it as they found it: adapters they load are
deleted at the end. The restart test runs last in this module (it restarts the engine).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from data_plane.inference.sidecar_runtime.fetch_files import tree_digest
from tests.e2e.data_plane.inference.pod.conftest import MAX_ADAPTER_BYTES, Pod, wait_for
from tests.support.ports import free_port

PROMPT = "The capital of France is"


def complete(pod: Pod, model: str) -> str:
    """A completion through the gateway when there is one, else straight from the engine."""
    client = openai.OpenAI(base_url=f"{pod.api_url}/v1", api_key="unused", max_retries=0)
    with client:
        out = client.completions.create(model=model, prompt=PROMPT, temperature=0, max_tokens=8)
    return out.choices[0].text


def engine_models(pod: Pod) -> dict[str, Any]:
    data = httpx.get(f"{pod.engine_url}/v1/models", timeout=10).json()["data"]
    return {entry["id"]: entry for entry in data}


def put(pod: Pod, name: str, source: str, sha256: str | None = None) -> httpx.Response:
    body = {"source": source} | ({"sha256": sha256} if sha256 else {})
    return httpx.put(f"{pod.sidecar_url}/adapters/{name}", json=body, timeout=120)


def delete(pod: Pod, name: str) -> None:
    httpx.delete(f"{pod.sidecar_url}/adapters/{name}", timeout=60)


@pytest.fixture
def alpha(pod: Pod) -> Iterator[str]:
    response = put(pod, "alpha", str(pod.model.adapters["alpha"]))
    assert response.status_code == 200, response.text
    yield "alpha"
    delete(pod, "alpha")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, pod: Pod) -> Iterator[tuple[Path, str]]:
    """A directory of adapter archives served over HTTP on 127.0.0.1: (dir, base URL)."""
    root = tmp_path_factory.mktemp("served")
    with tarfile.open(root / "beta.tar.gz", "w:gz") as tar:
        tar.add(pod.model.adapters["beta"], arcname="beta")
    (root / "big.tar").write_bytes(b"\0" * (MAX_ADAPTER_BYTES + 1))
    with tarfile.open(root / "escape.tar", "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/", server, 30, "http.server")
        yield root, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_adapter_changes_output_and_unload_removes_it(pod: Pod) -> None:
    base = complete(pod, "tiny")
    response = put(pod, "alpha", str(pod.model.adapters["alpha"]))
    assert response.status_code == 200, response.text
    assert response.json()["phase"] == "Loaded"
    assert engine_models(pod)["alpha"]["parent"] == "tiny"
    tuned = complete(pod, "alpha")
    assert tuned != base
    assert complete(pod, "alpha") == tuned  # temperature 0: deterministic
    # PUT again with the same source: nothing to do, still loaded.
    assert put(pod, "alpha", str(pod.model.adapters["alpha"])).status_code == 200

    assert httpx.delete(f"{pod.sidecar_url}/adapters/alpha", timeout=60).status_code == 200
    assert "alpha" not in engine_models(pod)
    with pytest.raises(openai.NotFoundError):
        complete(pod, "alpha")
    assert httpx.get(f"{pod.sidecar_url}/adapters/alpha").status_code == 404
    assert httpx.delete(f"{pod.sidecar_url}/adapters/alpha").status_code == 404


def test_sources_file_uri_and_http_with_sha256(pod: Pod, files: tuple[Path, str]) -> None:
    root, url = files
    beta_dir = pod.model.adapters["beta"]
    response = put(pod, "beta", beta_dir.as_uri(), sha256=tree_digest(beta_dir))
    assert response.status_code == 200, response.text
    from_dir = complete(pod, "beta")
    delete(pod, "beta")

    digest = hashlib.sha256((root / "beta.tar.gz").read_bytes()).hexdigest()
    response = put(pod, "beta", f"{url}/beta.tar.gz", sha256=digest)
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == digest
    assert complete(pod, "beta") == from_dir
    items = httpx.get(f"{pod.sidecar_url}/adapters").json()["items"]
    assert [(i["name"], i["phase"]) for i in items] == [("beta", "Loaded")]
    delete(pod, "beta")


def _bad_sources(pod: Pod, files: tuple[Path, str], scratch: Path) -> list[tuple[str, str, int]]:
    _, url = files
    alpha_dir = pod.model.adapters["alpha"]
    corrupt = scratch / "corrupt"
    shutil.copytree(alpha_dir, corrupt)
    for weights in corrupt.glob("*.safetensors"):
        weights.write_bytes(b"this is not a safetensors file")
    leaky = scratch / "leaky"
    shutil.copytree(alpha_dir, leaky)
    (leaky / "passwd").symlink_to("/etc/passwd")
    (pod.adapter_dir / "outside").symlink_to(alpha_dir)
    return [
        (alpha_dir.as_posix(), "DigestMismatch", 422),  # with a wrong sha256, below
        ((scratch / "missing").as_posix(), "SourceNotFound", 400),
        ("../../etc", "SourceNotAllowed", 422),  # relative, and `..`
        ("outside", "SourceNotAllowed", 422),  # relative: once read inside the install dir
        (f"{pod.adapter_dir}/adapters", "SourceNotAllowed", 422),  # the install dir itself
        (leaky.as_posix(), "PathEscape", 400),
        (f"{url}/escape.tar", "PathEscape", 400),
        ("ftp://example.com/a.tar", "SourceNotAllowed", 422),
        ("s3://bucket/../a.tar", "SourceNotAllowed", 422),  # refused before any request
        (f"{url}/big.tar", "AdapterTooLarge", 413),
        (f"{url}/missing.tar", "DownloadFailed", 502),
        (corrupt.as_posix(), "EngineRefused", 422),
    ]


def test_bad_sources_are_refused_and_loaded_adapters_keep_serving(
    pod: Pod, alpha: str, files: tuple[Path, str], tmp_path: Path
) -> None:
    before = complete(pod, alpha)
    for source, reason, status in _bad_sources(pod, files, tmp_path):
        sha = "0" * 64 if reason == "DigestMismatch" else None
        response = put(pod, "bad", source, sha256=sha)
        assert (response.status_code, response.json()["error"]["reason"]) == (status, reason), (
            source,
            response.text,
        )
        assert response.json()["error"]["message"]
        assert complete(pod, alpha) == before, source
    assert set(engine_models(pod)) == {"tiny", "alpha"}
    report = httpx.get(f"{pod.sidecar_url}/adapters/bad").json()
    assert report["phase"] == "Failed"
    assert report["reason"] == "EngineRefused"
    delete(pod, "bad")
    metrics = httpx.get(f"{pod.sidecar_url}/metrics").text
    assert 'adapter_failures_total{reason="PathEscape"}' in metrics
    assert "engine_requests_running" in metrics
    assert "vllm:" not in metrics
    assert "gpu_utilization" not in metrics  # no GPU here: absent, not faked
    with contextlib.suppress(FileNotFoundError):
        (pod.adapter_dir / "outside").unlink()


def _vllm_server_pid(pod: Pod) -> int:
    children = psutil.Process(pod.engine.pid).children()
    (server,) = [c for c in children if "vllm.entrypoints" in " ".join(c.cmdline())]
    return server.pid


def _phase(pod: Pod, name: str) -> str:
    with contextlib.suppress(httpx.HTTPError):
        return str(httpx.get(f"{pod.sidecar_url}/adapters/{name}", timeout=5).json()["phase"])
    return "?"


def _complete_soon(pod: Pod, model: str, within: float = 60) -> str:
    """A completion, allowing a gateway a few seconds to route to the restarted engine again."""
    deadline = time.monotonic() + within
    while True:
        try:
            return complete(pod, model)
        except openai.APIStatusError as exc:
            if exc.status_code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_engine_restart_reloads_desired_adapters(pod: Pod, alpha: str) -> None:
    before = complete(pod, alpha)
    first_pid = _vllm_server_pid(pod)
    psutil.Process(first_pid).kill()

    phases = set()
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        phase = _phase(pod, alpha)
        phases.add(phase)
        if phase == "Loaded" and "Loading" in phases:
            break
        time.sleep(0.5)
    assert "Loading" in phases, (
        f"never reported not-loaded: {phases}\n{pod.log_tail('sidecar.log')}"
    )
    assert _phase(pod, alpha) == "Loaded", pod.log_tail("engine.log")
    assert _vllm_server_pid(pod) != first_pid
    assert "alpha" in engine_models(pod)
    assert _complete_soon(pod, alpha) == before

    engine_metrics = httpx.get(pod.engine_metrics_url).text
    assert "engine_process_restarts_total 1.0" in engine_metrics
    assert "model_load_time_seconds " in engine_metrics
    sidecar_metrics = httpx.get(f"{pod.sidecar_url}/metrics").text
    assert "engine_restarts_total 1.0" in sidecar_metrics
