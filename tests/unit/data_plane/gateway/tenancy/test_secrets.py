"""Tenants and keys from Kubernetes objects; problems name entries, never values."""

from __future__ import annotations

import base64

from data_plane.gateway.tenancy.secrets import from_objects


def _tenant(name: str, secret: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"quotas": {"requestsPerMinute": 5}}
    if secret is not None:
        spec["apiKeysSecret"] = {"name": secret}
    return {
        "apiVersion": "serving.hoist.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_keys_problems_and_tenants() -> None:
    secrets = {
        "a-keys": {"data": {"one": _b64("sk-aaaaaaaaaa"), "bad": _b64("tiny"), "junk": "%%%"}},
        "dup": {"data": {"again": _b64("sk-aaaaaaaaaa")}},
    }
    tenants = [
        _tenant("a", "a-keys"),
        _tenant("b", "missing"),
        _tenant("c", "dup"),
        _tenant("d"),
        {"kind": "Tenant", "metadata": {"name": "e"}, "spec": {"weight": 0}},
    ]
    policies, keys, problems = from_objects(tenants, secrets)
    assert sorted(policies) == ["a", "b", "c", "d"]
    assert policies["a"].requests_per_minute == 5
    assert keys.lookup(b"sk-aaaaaaaaaa") == "a"
    assert len(keys) == 1
    assert problems == [
        "Secret 'a-keys': entry 'bad' is not a valid key",
        "Secret 'a-keys': entry 'junk' is not a valid key",
        "Tenant 'b': no Secret 'missing'",
        "Secret 'dup': entry 'again' repeats another key",
        "Tenant 'e': Input should be greater than or equal to 1",
    ]
    assert not any("tiny" in p or "sk-a" in p for p in problems)


def test_a_status_the_gateway_does_not_know_never_drops_a_tenant() -> None:
    """The gateway acts on the spec; a newer operator's status fields must not refuse it."""
    tenant = _tenant("a", "a-keys") | {
        "status": {"phase": "Ready", "fieldFromTheFuture": 1, "kopf": {"progress": {}}}
    }
    secrets = {"a-keys": {"data": {"one": _b64("sk-aaaaaaaaaa")}}}
    policies, keys, problems = from_objects([tenant], secrets)
    assert list(policies) == ["a"]
    assert keys.lookup(b"sk-aaaaaaaaaa") == "a"
    assert problems == []
