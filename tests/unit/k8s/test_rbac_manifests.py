from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

RBAC = Path(__file__).parents[3] / "k8s" / "base" / "01-rbac-roles.yaml"


def test_rbac_manifests_are_valid_kubernetes() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    assert {d["kind"] for d in docs} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31.0", strict=True)


def test_no_wildcards() -> None:
    for doc in yaml.safe_load_all(RBAC.read_text()):
        for rule in (doc or {}).get("rules", []):
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], rule
