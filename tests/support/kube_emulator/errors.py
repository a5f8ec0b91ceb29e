"""The API server's failures as `Status` objects, worded as the API server words them.

https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ and the
reasons of https://kubernetes.io/docs/reference/using-api/api-concepts/ (409 Conflict and
AlreadyExists, 410 Gone/Expired, 422 Invalid). kubectl reads `details` to print, e.g.,
`The Model "x" is invalid: spec.replicas: ...`.
"""

from __future__ import annotations

from typing import Any

from kmock._internal.k8s import KubernetesError

from tests.support.kube_emulator.schema import Cause


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> KubernetesError:
    texts = [c.text() for c in causes]
    listed = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return KubernetesError(
        status=422,
        reason="Invalid",
        message=f'{qualified(kind, group)} "{name}" is invalid: {listed}',
        details={
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
            ],
        },
    )


def not_found(plural: str, group: str, name: str) -> KubernetesError:
    return KubernetesError(
        status=404,
        reason="NotFound",
        message=f'{qualified(plural, group)} "{name}" not found',
        details={"name": name, "group": group, "kind": plural},
    )


def already_exists(plural: str, group: str, name: str) -> KubernetesError:
    return KubernetesError(
        status=409,
        reason="AlreadyExists",
        message=f'{qualified(plural, group)} "{name}" already exists',
        details={"name": name, "group": group, "kind": plural},
    )


def conflict(plural: str, group: str, name: str) -> KubernetesError:
    return KubernetesError(
        status=409,
        reason="Conflict",
        message=(
            f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object'
            " has been modified; please apply your changes to the latest version and try again"
        ),
        details={"name": name, "group": group, "kind": plural},
    )


def bad_request(message: str) -> KubernetesError:
    return KubernetesError(status=400, reason="BadRequest", message=message, details={})


def unsupported_media(content_type: str) -> KubernetesError:
    return KubernetesError(
        status=415,
        reason="UnsupportedMediaType",
        message=f"the body of the request was in an unknown format - accepted media types"
        f" include: application/json-patch+json, application/merge-patch+json,"
        f" application/apply-patch+yaml (got {content_type})",
        details={},
    )


def expired_event(requested: int, oldest: int) -> dict[str, Any]:
    """The ERROR event a watch receives for a resourceVersion older than the history kept."""
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {requested} ({oldest})",
            "reason": "Expired",
            "code": 410,
        },
    }
