"""`hoist up` trusts the adapter sources of its own declarations: an adapter declared in a
file loads from its folder even outside the policy's roots, while the same folder posted
through the gateway is refused (the gateway's caller is not the operator's file)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.embedded import (
    adapter_doc,
    model_doc,
    running_embedded,
    sim_adapter_dir,
    wait_until,
)


def test_a_declared_adapter_loads_from_outside_the_roots(tmp_path: Path) -> None:
    declared = sim_adapter_dir(tmp_path / "fleet", "sql")
    documents = [model_doc("tiny", replicas=1), adapter_doc("sql", "tiny", str(declared))]
    env = {"HOIST_ADAPTER_SOURCE_ROOTS": "/nonexistent"}
    with running_embedded(tmp_path, documents, env=env) as stack:
        wait_until(lambda: stack.adapter_phase("sql") == "Ready", "sql to be Ready", 60)
        posted = sim_adapter_dir(tmp_path / "elsewhere", "chat")
        body = {"name": "chat", "baseModel": "tiny", "source": str(posted)}
        request = urllib.request.Request(
            f"{stack.gateway_url}/v1/adapters",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
            status = 200
        except urllib.error.HTTPError as refused:
            status = refused.code
            refused.close()
        assert status == 422
