"""Timer passes share a namespace's observation while it is young and still fits."""

from __future__ import annotations

from typing import Any

from control_plane.api import Tenant
from control_plane.tenant_manager.handlers import Namespace, RecentObservations
from control_plane.tenant_manager.validation import Catalog


def tenant(name: str, secret: str | None) -> Tenant:
    spec: dict[str, Any] = {"apiKeysSecret": {"name": secret}} if secret else {}
    return Tenant.model_validate({"metadata": {"name": name}, "spec": spec})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reused_while_young_and_for_the_same_secret_only() -> None:
    clock = Clock()
    recent = RecentObservations(max_age_seconds=10, clock=clock)
    a = tenant("a", "a-keys")
    seen = Namespace([a, tenant("b", None)], {}, Catalog())
    assert recent.get("ns", a) is None
    recent.put("ns", seen)
    assert recent.get("ns", a) is seen
    assert recent.get("ns", tenant("b", None)) is seen
    assert recent.get("other", a) is None
    assert recent.get("ns", tenant("a", "new-keys")) is None  # its Secret changed since
    assert recent.get("ns", tenant("c", None)) is None  # not seen at all
    clock.now += 10.5
    assert recent.get("ns", a) is None
