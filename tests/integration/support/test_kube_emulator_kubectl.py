"""Plain kubectl against the emulator: what a user's first commands do on a real cluster.

Each test pins one behaviour to the Kubernetes documentation cited beside it. kubectl runs
with its defaults (`--validate=strict`, client-side apply) unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.support.kube_emulator import HoistKubeEmulator, running_emulator, write_kubeconfig
from tests.support.kubectl import Kubectl
from tests.support.manifests import ROOT

# What prometheus-operator would install; Hoist's monitoring manifests need its kinds.
MONITORING = [
    ("monitoring.coreos.com/v1/servicemonitors", "ServiceMonitor"),
    ("monitoring.coreos.com/v1/podmonitors", "PodMonitor"),
    ("monitoring.coreos.com/v1/prometheusrules", "PrometheusRule"),
]
MANIFESTS = sorted(
    p for p in (ROOT / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml"
)  # fmt: skip
OVERLAYS = sorted(p.parent for p in (ROOT / "k8s" / "overlays").glob("*/kustomization.yaml"))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[HoistKubeEmulator, Kubectl]]:
    async with running_emulator() as (emulator, url):
        for key, kind in MONITORING:
            emulator.declare(key, kind)
        config = write_kubeconfig(tmp_path / "kubeconfig", url)
        yield emulator, Kubectl(config, tmp_path / "kube-cache")


def model(spec: dict[str, object], name: str = "m") -> str:
    doc = {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }
    return yaml.safe_dump(doc)


async def test_every_manifest_applies_with_default_validation(
    cluster: tuple[HoistKubeEmulator, Kubectl],
) -> None:
    """Every file of k8s/ (CRDs first, as the docs say to install them) applies, and so does
    each kustomize overlay on top (a second apply patches what the first created)."""
    _, kubectl = cluster
    crds = [p for p in MANIFESTS if p.parent.name == "crds"]
    for path in crds + [p for p in MANIFESTS if p not in crds]:
        out = await kubectl.ok("apply", "-f", str(path))
        assert out.strip(), path
    for overlay in OVERLAYS:
        out = await kubectl.ok("apply", "-k", str(overlay))
        assert "deployment.apps/hoist-gateway" in out
    listed = json.loads(await kubectl.ok("get", "models", "-A", "-o", "json"))
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert {"llama-3-8b-sim", "llama-3-8b-instruct", "smollm2-135m-instruct"} <= names


COUNTER_EXAMPLES = [
    pytest.param(
        model({"source": "x", "replicas": "two"}),
        [],
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type'
        ' integer: "string"',
        id="string-replicas",
    ),
    pytest.param(
        model({"source": "x", "replicas": -1}),
        [],
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or"
        " equal to 0",
        id="negative-replicas",
    ),
    pytest.param(
        model({"source": "x", "engine": "tgi"}),
        [],
        'spec.engine: Unsupported value: "tgi": supported values: "vllm", "sim"',
        id="unknown-engine",
    ),
    pytest.param(
        model({"engine": "sim"}),
        [],
        "spec.source: Required value",
        id="missing-source",
    ),
    pytest.param(
        model({"source": "x", "colour": "blue"}),
        ["--validate=strict"],
        'strict decoding error: unknown field "spec.colour"',
        id="unknown-field-strict",
    ),
    pytest.param(
        model({"source": "x", "replicas": 2, "minReplicas": 3, "maxReplicas": 2}),
        [],
        'spec: Invalid value: "object": minReplicas must not exceed maxReplicas',
        id="min-above-max",
    ),
    pytest.param(
        yaml.safe_dump(
            {
                "apiVersion": "serving.hoist.dev/v1alpha1",
                "kind": "LoraAdapter",
                "metadata": {"name": "a", "namespace": "default"},
                "spec": {"baseModel": "m", "source": "s3://b/a", "placement": {"replicas": 0}},
            }
        ),
        [],
        'spec.placement.replicas: Invalid value: "integer": placement.replicas is a positive'
        " count or 'all'",
        id="adapter-placement-zero",
    ),
]


@pytest.mark.parametrize(("manifest", "flags", "expected"), COUNTER_EXAMPLES)
async def test_kubectl_refuses(
    cluster: tuple[HoistKubeEmulator, Kubectl], manifest: str, flags: list[str], expected: str
) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
    (schema and CEL rules, 422 Invalid naming the field) and #field-pruning with
    `--validate=strict` (https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation)."""
    emulator, kubectl = cluster
    err = await kubectl.refused("apply", *flags, "-f", "-", stdin=manifest)
    assert expected in err
    assert not [k for k in emulator.objects if not emulator.objects[k].deleted]


async def test_unknown_field_is_pruned_with_a_warning_under_validate_warn(
    cluster: tuple[HoistKubeEmulator, Kubectl],
) -> None:
    """`fieldValidation=Warn`: the object is stored without the field, with a warning."""
    _, kubectl = cluster
    result = await kubectl.run(
        "apply", "--validate=warn", "-f", "-", stdin=model({"source": "x", "colour": "blue"})
    )
    assert result.returncode == 0, result.stderr
    assert 'Warning: unknown field "spec.colour"' in result.stderr
    stored = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert "colour" not in stored["spec"]


async def test_valid_model_comes_back_with_its_defaults(
    cluster: tuple[HoistKubeEmulator, Kubectl],
) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting"""
    _, kubectl = cluster
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "weights", "lora": {}}))
    spec = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))["spec"]
    assert spec["engine"] == "vllm"
    assert (spec["replicas"], spec["minReplicas"], spec["maxReplicas"]) == (1, 0, 1000)
    assert spec["lora"] == {"maxLoras": 4, "maxLoraRank": 16}
    assert "kvCache" not in spec  # an absent object's fields are not defaulted


async def test_client_side_apply_keeps_last_applied_and_removes_dropped_fields(
    cluster: tuple[HoistKubeEmulator, Kubectl],
) -> None:
    """https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/: a field
    removed from the file is removed from the object; generation moves on spec changes only."""
    _, kubectl = cluster
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "x", "engineArgs": ["--a"]}))
    first = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    annotation = first["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ]
    assert json.loads(annotation)["spec"] == {"source": "x", "engineArgs": ["--a"]}
    assert "unchanged" in await kubectl.ok(
        "apply", "-f", "-", stdin=model({"source": "x", "engineArgs": ["--a"]})
    )
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "x"}))
    second = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert "engineArgs" not in second["spec"]
    assert second["metadata"]["generation"] == 2
    await kubectl.ok("label", "model", "m", "team=a")
    third = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert third["metadata"]["generation"] == 2
    assert int(third["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])


async def test_server_side_apply_merges_and_releases_fields(
    cluster: tuple[HoistKubeEmulator, Kubectl],
) -> None:
    """https://kubernetes.io/docs/reference/using-api/server-side-apply/: applied fields are
    set, fields the manager stops applying are removed, others' fields stay."""
    _, kubectl = cluster
    await kubectl.ok(
        "apply", "--server-side", "-f", "-", stdin=model({"source": "x", "replicas": 3})
    )
    await kubectl.ok("label", "model", "m", "owner=someone-else")
    await kubectl.ok("apply", "--server-side", "-f", "-", stdin=model({"source": "other"}))
    doc = json.loads(await kubectl.ok("get", "model", "m", "-o", "json", "--show-managed-fields"))
    assert doc["spec"]["source"] == "other"
    assert doc["spec"]["replicas"] == 1  # released, so back to its default
    assert doc["metadata"]["labels"] == {"owner": "someone-else"}
    assert any(m["manager"] == "kubectl" for m in doc["metadata"]["managedFields"])


async def test_diff_is_a_dry_run(cluster: tuple[HoistKubeEmulator, Kubectl]) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run: `dryRun=All`
    answers with the result and stores nothing (kubectl diff exits 1 on a difference)."""
    _, kubectl = cluster
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "x", "replicas": 1}))
    diff = await kubectl.run("diff", "-f", "-", stdin=model({"source": "x", "replicas": 2}))
    assert diff.returncode == 1, diff.stderr
    assert "+  replicas: 2" in diff.stdout
    new = await kubectl.run("diff", "-f", "-", stdin=model({"source": "x"}, name="fresh"))
    assert new.returncode == 1, new.stderr
    doc = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert doc["spec"]["replicas"] == 1
    missing = await kubectl.run("get", "model", "fresh")
    assert missing.returncode != 0
    assert 'models.serving.hoist.dev "fresh" not found' in missing.stderr


async def test_status_is_a_subresource(cluster: tuple[HoistKubeEmulator, Kubectl]) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource"""
    _, kubectl = cluster
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "x"}))
    await kubectl.ok("patch", "model", "m", "--type=merge", "-p", '{"status": {"phase": "Ready"}}')
    doc = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert "status" not in doc  # the main resource ignores status
    await kubectl.ok(
        "patch", "model", "m", "--subresource=status", "--type=merge",
        "-p", '{"status": {"phase": "Ready"}, "spec": {"source": "changed"}}',
    )  # fmt: skip
    doc = json.loads(await kubectl.ok("get", "model", "m", "-o", "json"))
    assert doc["status"]["phase"] == "Ready"
    assert doc["spec"]["source"] == "x"  # /status ignores the rest
    assert doc["metadata"]["generation"] == 1


async def test_wait_for_condition_ready(cluster: tuple[HoistKubeEmulator, Kubectl]) -> None:
    """`kubectl wait --for=condition=Ready` (list then watch) returns once the condition is
    set through /status."""
    _, kubectl = cluster
    await kubectl.ok("apply", "-f", "-", stdin=model({"source": "x"}))
    waiting = asyncio.create_task(
        kubectl.run("wait", "--for=condition=Ready", "model/m", "--timeout=60s")
    )
    await asyncio.sleep(1)
    assert not waiting.done()
    condition = {"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
    await kubectl.ok(
        "patch", "model", "m", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"conditions": [condition]}}),
    )  # fmt: skip
    result = await waiting
    assert result.returncode == 0, result.stderr
    assert "model.serving.hoist.dev/m condition met" in result.stdout


async def test_explain_reads_the_crd_schema(cluster: tuple[HoistKubeEmulator, Kubectl]) -> None:
    """`kubectl explain` reads /openapi/v3 (https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3)."""
    _, kubectl = cluster
    out = await kubectl.ok("explain", "models.spec.engine")
    assert "FIELD: engine <string>" in out
    assert "ENUM:" in out
    assert "vllm" in out


async def test_the_emulator_runs_on_its_own(tmp_path: Path) -> None:
    """`python -m tests.support.kube_emulator --port PORT --kubeconfig FILE` serves until
    interrupted, with the CRDs installed."""
    config = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.kube_emulator", "--port", "0",
        "--kubeconfig", str(config), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert b"serving the Kubernetes API emulator" in line
        kubectl = Kubectl(config, tmp_path / "kube-cache")
        out = await kubectl.ok("api-resources", "--api-group=serving.hoist.dev")
        assert {"models", "loraadapters", "tenants"} <= {r.split()[0] for r in out.splitlines()}
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
