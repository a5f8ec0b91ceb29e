"""Who may use what, and the per-tenant quotas over a rolling minute (time passed in)."""

from __future__ import annotations

import pytest

from data_plane.gateway.tenancy.policy import (
    Access,
    TenantPolicy,
    TenantsError,
    access,
    parse_tenants,
)
from data_plane.gateway.tenancy.quota import QuotaBook

A = TenantPolicy("team-a", allowed_models=("llama-*", "sql"))


@pytest.mark.parametrize(
    ("tenant", "model", "owner", "expected"),
    [
        (None, "anything", "team-b", Access.ALLOWED),  # operator key
        (A, "llama-8b", None, Access.ALLOWED),
        (A, "sql", None, Access.ALLOWED),
        (A, "mistral", None, Access.FORBIDDEN),
        (A, "mistral", "team-a", Access.ALLOWED),  # its own, whatever the name
        (A, "llama-8b", "team-b", Access.HIDDEN),  # another's: as if absent
    ],
)
def test_access(
    tenant: TenantPolicy | None, model: str, owner: str | None, expected: Access
) -> None:
    assert access(tenant, model, owner) is expected


def test_parse_tenants_reads_tenant_documents_and_skips_others() -> None:
    docs = [
        {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Model", "metadata": {"name": "m"}},
        {
            "apiVersion": "serving.hoist.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "team-a"},
            "spec": {
                "allowedModels": ["llama-*"],
                "weight": 3,
                "quotas": {"requestsPerMinute": 10, "concurrentRequests": 2},
                "apiKeysSecret": {"name": "team-a-keys"},
            },
        },
    ]
    assert parse_tenants(docs) == {
        "team-a": TenantPolicy(
            "team-a",
            ("llama-*",),
            requests_per_minute=10,
            concurrent_requests=2,
            weight=3,
        )
    }


def test_inline_keys_are_refused() -> None:
    doc = {
        "kind": "Tenant",
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "metadata": {"name": "t"},
        "spec": {"apiKeys": ["sk-plaintext"]},
    }
    with pytest.raises(TenantsError, match=r"spec\.apiKeys: Extra inputs are not permitted"):
        parse_tenants([doc])


def test_requests_per_minute_roll_over() -> None:
    book = QuotaBook()
    policy = TenantPolicy("t", requests_per_minute=2)
    assert book.admit(policy, 0.0) is None
    book.finish("t", 0, 0.0)
    assert book.admit(policy, 10.0) is None
    book.finish("t", 0, 10.0)
    refusal = book.admit(policy, 20.0)
    assert refusal is not None
    assert refusal.reason == "requests_per_minute"
    assert refusal.retry_after_s == pytest.approx(40.0)  # the first one leaves the window
    assert book.admit(policy, 60.0) is None


def test_concurrent_requests() -> None:
    book = QuotaBook()
    policy = TenantPolicy("t", concurrent_requests=1)
    assert book.admit(policy, 0.0) is None
    refusal = book.admit(policy, 0.0)
    assert refusal is not None
    assert refusal.reason == "concurrent_requests"
    book.finish("t", 5, 1.0)
    assert book.admit(policy, 1.0) is None


def test_tokens_per_minute_count_what_was_used() -> None:
    book = QuotaBook()
    policy = TenantPolicy("t", tokens_per_minute=100)
    assert book.admit(policy, 0.0) is None
    book.finish("t", 70, 1.0)
    assert book.admit(policy, 2.0) is None  # 70 < 100: admitted, may overshoot once
    book.finish("t", 70, 3.0)
    refusal = book.admit(policy, 4.0)
    assert refusal is not None
    assert refusal.reason == "tokens_per_minute"
    assert refusal.retry_after_s == pytest.approx(57.0)  # when the first 70 leave
    assert book.tokens("t", 61.5) == 70
    assert book.admit(policy, 61.5) is None


def test_tenants_do_not_share_counters() -> None:
    book = QuotaBook()
    a, b = TenantPolicy("a", requests_per_minute=1), TenantPolicy("b", requests_per_minute=1)
    assert book.admit(a, 0.0) is None
    assert book.admit(a, 0.0) is not None
    assert book.admit(b, 0.0) is None
