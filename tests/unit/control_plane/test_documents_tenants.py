"""Tenant documents in `hoist up -f` declarations."""

from __future__ import annotations

import pytest

from control_plane.documents import DocumentsError, parse_sources

TENANT = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  allowedModels: [llama-*]
  quotas: {requestsPerMinute: 60, tokensPerMinute: 10000, concurrentRequests: 4}
  weight: 2
  apiKeysSecret: {name: team-a-keys}
"""


def test_tenants_are_declarations() -> None:
    found = parse_sources([("t.yaml", TENANT)])
    assert [t.metadata.name for t in found.tenants] == ["team-a"]
    tenant = found.tenants[0]
    assert tenant.spec.quotas.tokens_per_minute == 10000
    assert tenant.spec.api_keys_secret is not None
    assert tenant.spec.api_keys_secret.name == "team-a-keys"
    assert found.files[("Tenant", "team-a")] == "t.yaml"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{apiKeys: [sk-inline]}", "spec.apiKeys: unknown field"),
        ("{weight: 0}", "spec.weight: Input should be greater than or equal to 1"),
        (
            "{quotas: {requestsPerMinute: 0}}",
            "spec.quotas.requestsPerMinute: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_tenants_are_refused_precisely(spec: str, expected: str) -> None:
    text = f"apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {spec}\n"
    with pytest.raises(DocumentsError) as caught:
        parse_sources([("t.yaml", text)])
    assert str(caught.value) == f't.yaml: document 1 (Tenant "t"): {expected}'
