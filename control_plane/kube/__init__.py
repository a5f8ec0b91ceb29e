"""The operators' own Kubernetes calls, through lightkube (docs/kubernetes-client.md).

kopf watches and dispatches; the handlers read and write other objects (Deployments,
Services, pods, statuses) through this thin shell, built from the same
`kopf.ConnectionInfo` the operator logs in with. Objects stay plain JSON dicts (lightkube's
generic resources): the managers render and validate them with `control_plane.api`.

An object is addressed by a `Ref` (kind, namespace, name, status subresource or not);
`core_ref`, `apps_ref`, `hoist_ref` and `cluster_ref` build them.

Errors: one `KubeError` for every failed call. `status` is the HTTP status (0: no answer);
`not_found` (404), `conflict` (409) and `temporary` (no answer, 429, 5xx) say what it means.
`get` answers `None` for 404; `apply` turns a 409 on create into a merge-patch.
"""

from control_plane.api.kube_error import KubeError
from control_plane.kube.client import KubeClient
from control_plane.kube.refs import (
    KINDS,
    Kind,
    Ref,
    apps_ref,
    cluster_ref,
    core_ref,
    hoist_ref,
    parse_selector,
)

__all__ = [
    "KINDS",
    "Kind",
    "KubeClient",
    "KubeError",
    "Ref",
    "apps_ref",
    "cluster_ref",
    "core_ref",
    "hoist_ref",
    "parse_selector",
]
