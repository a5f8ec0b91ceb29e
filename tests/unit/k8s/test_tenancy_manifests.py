"""k8s/tenancy: a namespace per tenant with a GPU quota, and its Tenant, all valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.api import Tenant
from tests.support.manifests import K8S, documents, problems

TENANCY = sorted((K8S / "tenancy").glob("*.yaml"))


@pytest.mark.parametrize("path", TENANCY, ids=lambda p: p.name)
def test_tenancy_manifests_are_valid(path: Path) -> None:
    docs = documents(path)
    found = [p for doc in docs for p in problems(doc)]
    assert not found, "\n".join(found)
    kinds = {d["kind"]: d for d in docs}
    assert "nvidia.com/gpu" in str(kinds["ResourceQuota"]["spec"]["hard"])
    tenant = Tenant.model_validate(kinds["Tenant"])
    assert tenant.spec.api_keys_secret is not None
    assert tenant.spec.api_keys_secret.name == kinds["Secret"]["metadata"]["name"]
    assert kinds["Secret"]["metadata"]["namespace"] == tenant.metadata.namespace


def test_a_tenant_with_inline_keys_is_refused() -> None:
    tenant = next(d for d in documents(TENANCY[0]) if d["kind"] == "Tenant")
    tenant["spec"]["apiKeys"] = ["sk-plaintext"]
    assert list(problems(tenant))
