"""Paths kmock's parser misreads: the Namespace collection and Namespace objects.

kmock reads `/api/v1/namespaces/NAME` as "namespace NAME, no resource", and cannot parse
`/api/v1/namespaces` at all; both are the core `namespaces` resource.
"""

from __future__ import annotations

import re

import attrs
import kmock
from kmock._internal import enums, rendering

NS_ALIAS = "/api/v1/namespaces-collection"


def namespace_as_object(request: rendering.Request) -> rendering.Request:
    """kmock reads `/api/v1/namespaces/NAME` as "namespace NAME, no resource"; it is the
    Namespace object NAME."""
    if request.url.path == NS_ALIAS:
        return attrs.evolve(request, resource=kmock.resource("", "v1", "namespaces"))
    match = re.fullmatch(r"/api/v1/namespaces/([^/]+)(?:/(status|finalize))?", request.url.path)
    if match is None or request.resource is None or request.resource.plural:
        return request
    method = str(getattr(request.method, "value", request.method)).upper()
    watching = method == "GET" and request.params.get("watch") == "true"
    action = {"GET": enums.action.WATCH if watching else enums.action.FETCH,
              "PATCH": enums.action.UPDATE, "DELETE": enums.action.DELETE}.get(method)  # fmt: skip
    return attrs.evolve(
        request,
        resource=kmock.resource("", "v1", "namespaces"),
        namespace=None,
        name=match[1],
        subresource=match[2],
        action=action,
    )
