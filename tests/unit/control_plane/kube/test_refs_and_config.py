"""The operators' client: how objects are addressed, selectors read and kopf's login mapped."""

from __future__ import annotations

import base64

import kopf
import pytest

from control_plane.kube import KubeError, apps_ref, cluster_ref, core_ref, hoist_ref, parse_selector
from control_plane.kube.config import kubeconfig_from


@pytest.mark.parametrize(
    ("selector", "labels"),
    [
        pytest.param("a=b", {"a": "b"}, id="equality"),
        pytest.param("a==b, c=d", {"a": "b", "c": "d"}, id="double-equals-and-spaces"),
        pytest.param("serving.hoist.dev/model", {"serving.hoist.dev/model": None}, id="exists"),
        pytest.param("a=b,,", {"a": "b"}, id="empty-terms"),
    ],
)
def test_equality_selectors_become_lightkube_labels(
    selector: str, labels: dict[str, str | None]
) -> None:
    assert parse_selector(selector) == labels


@pytest.mark.parametrize("selector", ["a!=b", "!a", "a in (b)"])
def test_set_based_selectors_are_refused_rather_than_misread(selector: str) -> None:
    with pytest.raises(ValueError, match="only"):
        parse_selector(selector)


def test_refs_name_their_kind_namespace_and_subresource() -> None:
    pods = core_ref("ns", "pods")
    assert pods.kind.kind == "Pod" and pods.kind.group == "" and pods.name is None
    assert str(pods.named("p-0").status_of()) == "pods/ns/p-0/status"
    assert apps_ref("ns", "deployments", "d").kind.group == "apps"
    assert hoist_ref("ns", "models", "m", "status").status
    assert not cluster_ref("clusterkopfpeerings").kind.namespaced
    with pytest.raises(ValueError, match="subresource"):
        hoist_ref("ns", "models", "m", "scale")


def test_one_resource_class_per_kind_even_for_the_core_group() -> None:
    assert core_ref("a", "pods").kind.resource() is core_ref("b", "pods").kind.resource()
    assert hoist_ref("a", "models").kind.resource() is hoist_ref("b", "models").kind.resource()


def test_kopf_login_maps_to_a_kubeconfig() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    info = kopf.ConnectionInfo(
        server="https://10.0.0.1:6443",
        token="tok",
        ca_data=pem,
        default_namespace="hoist",
    )
    config = kubeconfig_from(info)
    assert config.cluster.server == "https://10.0.0.1:6443"
    assert config.cluster.certificate_auth_data == base64.b64encode(pem).decode()
    assert config.user is not None and config.user.token == "tok"
    assert config.namespace == "hoist"


def test_kopf_login_with_inline_base64_material_is_passed_on_as_is() -> None:
    encoded = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    config = kubeconfig_from(kopf.ConnectionInfo(server="https://k", ca_data=encoded))
    assert config.cluster.certificate_auth_data == encoded


@pytest.mark.parametrize(
    ("status", "temporary", "not_found", "conflict"),
    [(0, True, False, False), (404, False, True, False), (409, False, False, True),
     (429, True, False, False), (503, True, False, False), (422, False, False, False)],
)  # fmt: skip
def test_the_one_error_says_what_a_status_means(
    status: int, temporary: bool, not_found: bool, conflict: bool
) -> None:
    error = KubeError(status, "m")
    assert (error.temporary, error.not_found, error.conflict) == (temporary, not_found, conflict)
