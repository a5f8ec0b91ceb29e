"""docs/operations.md says what the repository does: its paths exist, its commands name
real overlays, its alert table and dashboard names are the generated ones."""

from __future__ import annotations

import re

import yaml

from monitoring.dashboards import all_dashboards
from monitoring.generate import RULES
from tests.support.manifests import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
PATH = re.compile(
    r"(?<![\w/.-])((?:k8s|docker|monitoring|tests|control_plane|data_plane)/[\w./-]*\w)"
)


PENDING: dict[str, str] = {}
"""Paths the doc describes that another issue is writing; each must go once it exists."""


def test_every_path_the_doc_names_exists() -> None:
    missing = {p for p in PATH.findall(DOC) if "<" not in p and not (ROOT / p).exists()}
    assert not missing - set(PENDING), f"docs/operations.md names missing paths: {missing}"
    landed = [p for p in PENDING if (ROOT / p).exists()]
    assert not landed, f"{landed} exist now: remove them from PENDING"


def test_the_path_check_can_fail() -> None:
    assert PATH.findall("see k8s/overlays/nope and docker/Dockerfile.gateway") == [
        "k8s/overlays/nope",
        "docker/Dockerfile.gateway",
    ]


def test_every_alert_is_documented() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    documented = set(re.findall(r"^\| `(Hoist\w+)` \|", DOC, re.MULTILINE))
    assert documented == alerts


def test_every_dashboard_is_documented() -> None:
    for dashboard in all_dashboards():
        assert f"**{dashboard.title}**" in DOC
