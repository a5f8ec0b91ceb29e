"""kmock's emulator, taught to behave as a Kubernetes API server where Hoist and kubectl care.

kmock's `KubernetesEmulator` stores objects and serves discovery, list/watch/get/create/
patch/delete, but stores whatever it is given. This subclass takes over the resource
endpoints (user-declared kmock reactions still come first) and, as the API server does:
- stamps `metadata.uid`, `resourceVersion`, `generation`, `creationTimestamp`, honours
  `generateName`, refuses a stale `resourceVersion` (409) and a duplicate name (409);
- applies the patch types and server-side apply (`writes`), `dryRun=All`, PUT;
- keeps `status` a subresource and moves `generation` only on spec changes;
- prunes, defaults and validates custom resources against their CRD (`schema`,
  `cel_rules`), with `fieldValidation` Strict/Warn/Ignore;
- serves watches from a resourceVersion, with bookmarks and 410 (`watch`);
- serves `/openapi/v3` (`openapi`) and printer-column tables (`tables`);
- installs a CRD that is created through the API.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from typing import Any

import jsonpatch
import kmock
import yaml
from kmock._internal import apps, rendering
from kmock._internal.k8s import KubernetesError

from tests.support.kube_emulator import admission, errors, paths, schema, tables, watch, writes
from tests.support.kube_emulator.kinds import Kind
from tests.support.kube_emulator.reads import Reads

_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


class HoistKubeEmulator(Reads, kmock.KubernetesEmulator):
    """kmock's emulator with an API server's writes, validation, watches and OpenAPI."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._version = 0
        self.history = watch.History()
        self.bookmark_interval = 5.0
        self._kinds: dict[str, Kind] = {}
        self._applied: dict[tuple[Any, str], dict[str, Any]] = {}
        self.fallback["put"] << self._serve_replace
        self.fallback["get /openapi/v2"] << self._serve_openapi_v2
        self.fallback["get /openapi/v3"] << self._serve_openapi_index
        self.fallback["get", re.compile(r"/openapi/v3/.+")] << self._serve_openapi_document

    # --- declarations ------------------------------------------------------------------

    def declare_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        version = next(v for v in spec["versions"] if v.get("storage", True))
        names = spec["names"]
        kind = Kind(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            schema=version.get("schema", {}).get("openAPIV3Schema"),
            status="status" in version.get("subresources", {}),
            columns=version.get("additionalPrinterColumns", []),
        )
        self._register(kind, names.get("singular"), names.get("shortNames", []))
        self.resources[self._key_of(kind)].categories.update(names.get("categories", []))

    def declare(self, key: str, kind: str, *, namespaced: bool = True) -> None:
        """A built-in (schemaless) kind, e.g. `declare("apps/v1/deployments", "Deployment")`."""
        *group, version, plural = key.split("/")
        status = plural in ("pods", "deployments", "services", "poddisruptionbudgets")
        self._register(
            Kind("/".join(group), version, plural, kind, namespaced, None, status), None, []
        )

    def _register(self, kind: Kind, singular: str | None, short: list[str]) -> None:
        key = self._key_of(kind)
        self._kinds[key] = kind
        self.resources[key] = kmock.ResourceInfo(
            kind=kind.kind,
            singular=singular or kind.kind.lower(),
            namespaced=kind.namespaced,
            shortnames=set(short),
            verbs=_VERBS,
            subresources={"status"} if kind.status else set(),
        )

    @staticmethod
    def _key_of(kind: Kind) -> str:
        return f"{kind.group}/{kind.version}/{kind.plural}" if kind.group else f"v1/{kind.plural}"

    def _kind(self, request: rendering.Request) -> Kind:
        res = request.resource
        assert res is not None
        key = f"{res.group}/{res.version}/{res.plural}" if res.group else f"v1/{res.plural}"
        if key not in self._kinds:
            # Declared straight through kmock's `resources` (schemaless, as kmock serves it).
            try:
                name = self.resources[key].kind or str(res.plural).capitalize()
            except KeyError:
                name = str(res.plural).capitalize()
            self._kinds[key] = Kind(res.group or "", str(res.version), str(res.plural), name)
        return self._kinds[key]

    def store_unchecked(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Store `doc` as the resource `key` ("group/version/plural") without admission: an
        object that an older, looser CRD schema admitted (the API server validates on
        write only), for tests of what the operator does with a spec it cannot use."""
        kind = self._kinds[key]
        meta = copy.deepcopy(doc["metadata"])
        meta.update(
            uid=str(uuid.uuid4()),
            generation=1,
            creationTimestamp=tables.now(),
            resourceVersion=self._next_version(),
        )
        meta.setdefault("namespace", "default")
        obj = dict(copy.deepcopy(doc), metadata=meta)
        if kind.schema is not None:  # defaults apply on read as well as on write
            obj = schema.apply_defaults(kind.schema, schema.prune(kind.schema, obj)[0])
        resource = kmock.resource(kind.group, kind.version, kind.plural)
        self._store(kind, (resource, meta["namespace"], meta["name"]), obj, "ADDED")
        return obj

    # --- the request pipeline ----------------------------------------------------------

    async def __call__(self, raw_request: Any) -> Any:
        if raw_request.path.rstrip("/") == "/api/v1/namespaces":
            # kmock's path parser fails on the Namespace collection (it expects a name
            # after "namespaces"); pass it under a name the parser reads as a collection.
            raw_request = raw_request.clone(rel_url=raw_request.rel_url.with_path(paths.NS_ALIAS))
        return await super().__call__(raw_request)

    async def _handle(self, request: rendering.Request) -> Any:
        # Skip kmock's own bookkeeping of writes: the fallbacks below do an API server's.
        seen = paths.namespace_as_object(request)
        if seen is not request:  # kmock's views find requests by identity in its log
            at = next(i for i, r in enumerate(self._requests) if r is request)
            self._requests[at] = seen
        return await apps.RawHandler._handle(self, seen)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _stored(self, request: rendering.Request) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def _store(self, kind: Kind, key: Any, obj: dict[str, Any], event: str) -> None:
        if event == "DELETED":
            self.objects[key].delete()
        elif key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj
        version = int(obj["metadata"]["resourceVersion"])
        shown = dict(obj, apiVersion=kind.api_version, kind=kind.kind)
        self.history.record(
            watch.Change(version, self._key_of(kind), {"type": event, "object": shown})
        )
        if kind.plural == "customresourcedefinitions" and event != "DELETED":
            self.declare_crd(obj)

    def _admit(
        self,
        kind: Kind,
        request: rendering.Request,
        before: dict[str, Any] | None,
        after: dict[str, Any],
    ) -> tuple[dict[str, Any], list[str]]:
        directive = request.params.get("fieldValidation", "Warn")
        to_status = request.subresource == "status"
        return admission.admit(kind, directive, to_status, before, after)

    def _respond(self, status: int, obj: dict[str, Any], warnings: list[str]) -> Any:
        header = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)
        return rendering.Response(status=status, payload=obj, headers={"Warning": header or None})

    # --- writes ------------------------------------------------------------------------

    async def _serve_create(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        body = request.data
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request is not a JSON object")
        meta = body.setdefault("metadata", {})
        if request.namespace and meta.get("namespace", request.namespace) != request.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on"
                " the request"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name:
            raise errors.invalid(kind.kind, kind.group, "", [admission.REQUIRED_NAME])
        return self._create(kind, request, body)

    def _create(self, kind: Kind, request: rendering.Request, body: dict[str, Any]) -> Any:
        meta = body.setdefault("metadata", {})
        namespace = (request.namespace or meta.get("namespace") or "default") if (
            kind.namespaced
        ) else None  # fmt: skip
        key = (request.resource, namespace, meta["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise errors.already_exists(kind.plural, kind.group, meta["name"])
        obj, warnings = self._admit(kind, request, None, body)
        if kind.status and request.subresource != "status":
            obj.pop("status", None)
        obj["metadata"].update(
            uid=str(uuid.uuid4()),
            generation=1,
            creationTimestamp=tables.now(),
            resourceVersion=str(self._version + 1),
        )
        if namespace is not None:
            obj["metadata"]["namespace"] = namespace
        if request.params.get("dryRun") != "All":
            self._next_version()
            self._store(kind, key, obj, "ADDED")
        return self._respond(201, obj, warnings)

    async def _serve_update(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        before = self._stored(request)
        if content_type == writes.APPLY_PATCH:
            return self._apply(kind, request, before)
        if before is None:
            raise errors.not_found(kind.plural, kind.group, request.name or "")
        try:
            if content_type == writes.JSON_PATCH:
                after = writes.json_patch(before, request.data)
            elif content_type == writes.MERGE_PATCH:
                after = writes.merge_patch(before, request.data)
            elif content_type == writes.STRATEGIC_PATCH and kind.schema is None:
                after = writes.strategic_merge(before, request.data)
            else:
                raise errors.unsupported_media(content_type)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        self._check_precondition(kind, before, request.data)
        return self._update(kind, request, before, after)

    async def _serve_replace(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        before = self._stored(request)
        if before is None:
            raise errors.not_found(kind.plural, kind.group, request.name or "")
        if not isinstance(request.data, dict):
            raise errors.bad_request("the body of the request is not a JSON object")
        self._check_precondition(kind, before, request.data)
        return self._update(kind, request, before, request.data)

    def _check_precondition(self, kind: Kind, before: dict[str, Any], body: Any) -> None:
        wanted = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
        if wanted and wanted != before["metadata"]["resourceVersion"]:
            raise errors.conflict(kind.plural, kind.group, before["metadata"]["name"])

    def _apply(self, kind: Kind, request: rendering.Request, before: dict[str, Any] | None) -> Any:
        manager = request.params.get("fieldManager")
        if not manager:
            raise errors.bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set"
            )
        applied = request.data if isinstance(request.data, dict) else None
        if applied is None:  # YAML proper, not JSON
            applied = yaml.safe_load(request.text or "{}") or {}
        key = (request.resource, request.namespace, request.name)
        after = writes.server_side_apply(before, applied, self._applied.get((key, manager)))
        entry = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": kind.api_version,
            "time": tables.now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": writes.fields_v1(applied),
        }
        if request.subresource:
            entry["subresource"] = request.subresource
        managed = [m for m in after.get("metadata", {}).get("managedFields", []) or []]
        managed = [m for m in managed if m.get("manager") != manager] + [entry]
        after.setdefault("metadata", {})["managedFields"] = managed
        if before is None:
            after["metadata"].setdefault("name", request.name)
            response = self._create(kind, request, after)
        else:
            response = self._update(kind, request, before, after)
        if request.params.get("dryRun") != "All":
            self._applied[(key, manager)] = applied
        return response

    def _update(
        self,
        kind: Kind,
        request: rendering.Request,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> Any:
        after, warnings = self._admit(kind, request, before, copy.deepcopy(after))
        meta = after.setdefault("metadata", {})
        old_meta = before["metadata"]
        for kept in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
        meta["generation"] = old_meta.get("generation", 1) + int(writes.spec_changed(before, after))
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if after == before:
            return self._respond(200, after, warnings)  # a no-op write changes nothing
        meta["resourceVersion"] = str(self._version + 1)
        if request.params.get("dryRun") == "All":
            return self._respond(200, after, warnings)
        self._next_version()
        key = (request.resource, request.namespace, request.name)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone: the update, then the deletion, each its own version.
            self._store(kind, key, after, "MODIFIED")
            gone = copy.deepcopy(after)
            gone["metadata"]["resourceVersion"] = self._next_version()
            self._store(kind, key, gone, "DELETED")
        else:
            self._store(kind, key, after, "MODIFIED")
        return self._respond(200, after, warnings)

    async def _serve_delete(self, request: rendering.Request) -> Any:
        kind = self._kind(request)
        before = self._stored(request)
        if before is None:
            raise errors.not_found(kind.plural, kind.group, request.name or "")
        key = (request.resource, request.namespace, request.name)
        meta = before["metadata"]
        if request.params.get("dryRun") == "All" or meta.get("deletionTimestamp"):
            return self._respond(200, before, [])
        meta["resourceVersion"] = self._next_version()
        if meta.get("finalizers"):
            meta["deletionTimestamp"] = tables.now()
            meta["generation"] = meta.get("generation", 1) + 1
            self._store(kind, key, before, "MODIFIED")
        else:
            self._store(kind, key, before, "DELETED")
        return self._respond(200, dict(before, apiVersion=kind.api_version, kind=kind.kind), [])


__all__ = ["HoistKubeEmulator", "Kind"]
