"""The emulator's reads: list, get, watch, discovery and OpenAPI (a mixin of the emulator).

https://kubernetes.io/docs/reference/using-api/api-concepts/ (lists carry the latest
`resourceVersion`; `as=Table` answers with printer columns; watches: `watch`).
"""

from __future__ import annotations

import copy
from typing import Any

from kmock._internal import rendering

from tests.support.kube_emulator import errors, openapi, tables, watch
from tests.support.kube_emulator.kinds import Kind, field_matches, matches_labels


class Reads:
    """Needs the emulator's `_kind()`, `_key_of()`, `_kinds`, `_version`, `objects`,
    `history` and `bookmark_interval`."""

    # --- reads -------------------------------------------------------------------------

    def _listed(self, kind: Kind, request: rendering.Request) -> list[dict[str, Any]]:
        out = []
        for (res, namespace, _), obj in list(self.objects.items()):
            if res != request.resource or obj.deleted:
                continue
            if request.namespace is not None and namespace != request.namespace:
                continue
            out.append(dict(copy.deepcopy(obj.raw), apiVersion=kind.api_version, kind=kind.kind))
        return [o for o in out if self._selected(request, o)]

    @staticmethod
    def _selected(request: rendering.Request, obj: dict[str, Any]) -> bool:
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        meta = obj.get("metadata", {})
        if labels and not matches_labels(meta.get("labels") or {}, labels):
            return False
        return not (fields and not field_matches(obj, fields))

    async def _serve_list(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        items = self._listed(kind, request)
        if "as=Table" in request.headers.get("Accept", ""):
            return tables.table(kind.columns, items, str(self._version))
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        obj = self._stored(request)
        if obj is None:
            raise errors.not_found(kind.plural, kind.group, request.name or "")
        obj = dict(obj, apiVersion=kind.api_version, kind=kind.kind)
        if "as=Table" in request.headers.get("Accept", ""):
            return tables.table(kind.columns, [obj], str(self._version))
        return obj

    async def _serve_watch(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        since = request.params.get("resourceVersion") or None
        timeout = request.params.get("timeoutSeconds")

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata", {})
            if request.namespace is not None and meta.get("namespace") != request.namespace:
                return False
            if request.name is not None and meta.get("name") != request.name:
                return False
            return self._selected(request, obj)

        def snapshot() -> tuple[int, list[dict[str, Any]]]:
            listing = rendering.Request(resource=request.resource, namespace=request.namespace)
            return self._version, self._listed(kind, listing)

        spec = watch.WatchRequest(
            resource=self._key_of(kind),
            kind=kind.kind,
            api_version=kind.api_version,
            since=None if since in (None, "0") else int(since),
            bookmarks=request.params.get("allowWatchBookmarks") == "true",
            timeout=float(timeout) if timeout else None,
            matches=matches,
        )
        async for item in watch.stream(spec, self.history, snapshot, self.bookmark_interval):
            yield item

    async def _serve_version(self, request: rendering.Request) -> Any:
        # kmock lists a subresource with its resource's short names and categories, which
        # makes kubectl warn that `hm` "could also match models/status"; the API server
        # lists subresources with neither.
        doc = await super()._serve_version(request)
        doc["groupVersion"] = doc["groupVersion"].lstrip("/")  # kmock says "/v1" for core
        for entry in doc.get("resources", []):
            if "/" in entry["name"]:
                entry.update(shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return doc

    def _served(self) -> list[openapi.Served]:
        return [
            openapi.Served(k.group, k.version, k.plural, k.kind, k.namespaced, k.schema)
            for k in self._kinds.values()
        ]

    async def _serve_openapi_v2(self, request: rendering.Request) -> Any:
        if "protobuf" in request.headers.get("Accept", ""):
            raise errors.not_found("openapi", "", "v2")
        return openapi.swagger_v2(self._served())

    async def _serve_openapi_index(self, request: rendering.Request) -> Any:
        return openapi.index(self._served())

    async def _serve_openapi_document(self, request: rendering.Request) -> Any:
        path = request.url.path.removeprefix("/openapi/v3/")
        parts = path.split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise errors.not_found("openapi", "", path)
        if not any((s.group, s.version) == (group, version) for s in self._served()):
            raise errors.not_found("openapi", "", path)
        return openapi.document(self._served(), group, version)
