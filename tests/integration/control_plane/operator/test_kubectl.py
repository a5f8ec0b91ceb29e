"""kubectl against the emulator: apply the example, read the printer columns a user sees."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from control_plane.kube import core_ref
from tests.support.fake_sidecar import fake_sidecars
from tests.support.kube_emulator import running_emulator, write_kubeconfig
from tests.support.operator_harness import (
    cluster_client,
    eventually,
    fast_settings,
    operator_running,
)
from tests.support.tools import tool

EXAMPLE = Path(__file__).parents[4] / "examples" / "sim" / "fleet.yaml"


async def kubectl(kubeconfig: Path, *args: str) -> str:
    cache = kubeconfig.parent / "kube-cache"  # this test's API only, never a stale one
    proc = await asyncio.create_subprocess_exec(
        tool("kubectl"), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {err.decode()}"
    return out.decode()


def table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_apply_example_and_get_printer_columns(tmp_path: Path) -> None:
    async with (
        running_emulator() as (_, url),
        cluster_client(url) as cluster,
        fake_sidecars(2) as sidecars,
    ):
        config = write_kubeconfig(tmp_path / "kubeconfig", url)
        # A relative adapter source is `hoist up`'s (relative to the file); on a cluster a
        # local source is an absolute path on the sidecar's disk, under an allowed root.
        example = tmp_path / "fleet.yaml"
        example.write_text(
            EXAMPLE.read_text().replace("source: adapters/sql-lora", "source: /adapters/sql-lora")
        )
        applied = await kubectl(config, "apply", "-f", str(example))
        assert "model.serving.hoist.dev/llama-3-8b-sim created" in applied
        assert "loraadapter.serving.hoist.dev/sql-lora created" in applied
        for i, sidecar in enumerate(sidecars):
            await cluster.add_pod(f"llama-3-8b-sim-{i}", "llama-3-8b-sim", sidecar)

        async with operator_running(url, fast_settings()):

            async def ready() -> bool:
                doc = await cluster.get("loraadapters", "sql-lora")
                return ((doc or {}).get("status") or {}).get("phase") == "Ready"

            await eventually(ready, what="sql-lora Ready")

            loras = table(await kubectl(config, "get", "loraadapters"))
            assert loras[0] == ["NAME", "BASE", "PHASE", "READY", "DESIRED", "AGE"]
            assert loras[1][:5] == ["sql-lora", "llama-3-8b-sim", "Ready", "2", "2"]

            short = table(await kubectl(config, "get", "lora"))
            assert short[1][:5] == loras[1][:5]
            wide = table(await kubectl(config, "get", "lora", "-o", "wide"))
            assert wide[0] == ["NAME", "BASE", "PHASE", "READY", "DESIRED", "SOURCE", "AGE"]
            assert wide[1][5] == "/adapters/sql-lora"

            async def model_loading() -> bool:
                doc = await cluster.get("models", "llama-3-8b-sim")
                return ((doc or {}).get("status") or {}).get("phase") == "Loading"

            await eventually(model_loading, what="the Model's status")
            models = table(await kubectl(config, "get", "models"))
            assert models[0] == ["NAME", "ENGINE", "DESIRED", "READY", "PHASE", "AGE"]
            assert models[1][:5] == ["llama-3-8b-sim", "sim", "2", "0", "Loading"]


TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  quotas: {requestsPerMinute: 600, tokensPerMinute: 200000, concurrentRequests: 32}
  weight: 2
  apiKeysSecret: {name: team-a-keys}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-b}
spec:
  weight: 1
  apiKeysSecret: {name: team-b-keys}
"""


async def test_tenants_printer_columns_show_phase_and_keys(tmp_path: Path) -> None:
    async with running_emulator() as (_, url), cluster_client(url) as cluster:
        config = write_kubeconfig(tmp_path / "kubeconfig", url)
        manifest = tmp_path / "tenants.yaml"
        manifest.write_text(TENANTS)
        applied = await kubectl(config, "apply", "-f", str(manifest))
        assert "tenant.serving.hoist.dev/team-a created" in applied
        # team-a's key Secret (team-b has none, so it stays NotReady)
        await cluster.kube.create(
            core_ref("default", "secrets"),
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-a-keys"},
             "data": {"ci": base64.b64encode(b"sk-tenant-kubectl-a").decode()}},
        )  # fmt: skip
        async with operator_running(url, fast_settings()):

            async def settled() -> bool:
                phases = []
                for name in ("team-a", "team-b"):
                    doc = await cluster.get("tenants", name)
                    phases.append(((doc or {}).get("status") or {}).get("phase"))
                return phases == ["Ready", "NotReady"]

            await eventually(settled, what="team-a Ready, team-b NotReady")
            tenants = table(await kubectl(config, "get", "tenants"))
            assert tenants[0] == [
                "NAME", "PHASE", "KEYS", "WEIGHT", "RPM", "TPM", "CONCURRENT", "AGE"
            ]  # fmt: skip
            assert tenants[1][:7] == ["team-a", "Ready", "1", "2", "600", "200000", "32"]
            assert tenants[2][:4] == ["team-b", "NotReady", "0", "1"]
            wide = table(await kubectl(config, "get", "ht", "-o", "wide"))
            assert wide[0][-2:] == ["SECRET", "AGE"]
            assert wide[2][-2] == "team-b-keys"
