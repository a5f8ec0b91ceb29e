"""`python -m control_plane.operator` as a real process against the emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from control_plane.kube import apps_ref
from tests.support.kube_emulator import running_emulator, write_kubeconfig
from tests.support.operator_harness import NS, cluster_client, eventually


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_process_serves_metrics_reconciles_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with running_emulator() as (_, url), cluster_client(url) as cluster:
        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", url)),
            "HOIST_OPERATOR_STANDALONE": "true",
            "HOIST_OPERATOR_METRICS_HOST": "127.0.0.1",
            "HOIST_OPERATOR_METRICS_PORT": str(port),
            "HOIST_OPERATOR_MODEL_RESYNC_SECONDS": "1",
        }
        log = (tmp_path / "operator.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "control_plane.operator",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            await cluster.apply(
                "models",
                {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Model",
                 "metadata": {"name": "m", "namespace": NS},
                 "spec": {"source": "/m", "engine": "sim"}},
            )  # fmt: skip

            async def deployed() -> bool:
                return await cluster.kube.get(apps_ref(NS, "deployments", "m")) is not None

            await eventually(deployed, within=30, what="the process to create the Deployment")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200

                async def counted() -> bool:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        text = await resp.text()
                    return 'hoist_operator_reconciles_total{kind="Model",result="ok"}' in text

                await eventually(counted, what="the pass counted in /metrics")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            log.close()
