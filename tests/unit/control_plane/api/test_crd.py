"""The CRDs in k8s/crds are generated from the types, structural, and valid manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from control_plane.api.crd import lora_adapter_crd, model_crd, render_crds, tenant_crd

CRD_DIR = Path(__file__).parents[4] / "k8s" / "crds"


def test_checked_in_crds_match_the_types() -> None:
    rendered = render_crds()
    on_disk = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert on_disk == rendered, "k8s/crds drifted from control_plane/api: run `make crds`"


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, node)]
    for name, child in node.get("properties", {}).items():
        nodes += _walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            nodes += _walk(node[key], f"{path}[]")
    return nodes


@pytest.mark.parametrize(
    "crd", [model_crd(), lora_adapter_crd(), tenant_crd()], ids=["Model", "LoraAdapter", "Tenant"]
)
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("type") != "null", path
        if "properties" in node:
            assert "additionalProperties" not in node, path


@pytest.mark.parametrize(
    "crd", [model_crd(), lora_adapter_crd(), tenant_crd()], ids=["Model", "LoraAdapter", "Tenant"]
)
def test_crd_is_a_valid_kubernetes_manifest(crd: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(crd, "1.31", strict=True)


def test_printer_columns_read_at_a_glance() -> None:
    columns = lora_adapter_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    visible = [c["name"] for c in columns if not c.get("priority")]
    assert visible == ["Base", "Phase", "Ready", "Desired", "Age"]


def test_rendered_yaml_round_trips() -> None:
    for text in render_crds().values():
        assert yaml.safe_load(text)["apiVersion"] == "apiextensions.k8s.io/v1"


def test_checked_in_reference_matches_the_types() -> None:
    from control_plane.api.reference import render_reference

    page = Path(__file__).parents[4] / "docs" / "api.md"
    assert page.read_text() == render_reference(), "docs/api.md drifted: run `make crds`"
