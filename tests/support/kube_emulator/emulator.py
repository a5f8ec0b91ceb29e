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
from dataclasses import dataclass, field
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import apps, enums, rendering
from kmock._internal.k8s import KubernetesError

from tests.support.kube_emulator import errors, openapi, schema, tables, watch, writes
from tests.support.kube_emulator.cel_rules import ABSENT, check_rules, compile_errors

_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


@dataclass
class Kind:
    """What the emulator knows of one resource."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    schema: dict[str, Any] | None = None  # a CRD's openAPIV3Schema
    status: bool = False  # has a status subresource
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _matches_labels(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", term)
        if match is None:
            present = term.lstrip("!") in labels
            if present == term.startswith("!"):
                return False
        elif (labels.get(match[1].strip()) == match[3].strip()) == (match[2] == "!="):
            return False
    return True


def _selector_terms(selector: str) -> list[tuple[str, str, str]]:
    out = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", term)
        if match:
            out.append((match[1].strip(), match[2], match[3].strip()))
    return out


def _field_matches(obj: dict[str, Any], selector: str) -> bool:
    for key, op, value in _selector_terms(selector):
        actual = tables.jsonpath(obj, key)
        if (op == "!=") == (str(actual) == value):
            return False
    return True


class HoistKubeEmulator(kmock.KubernetesEmulator):
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
            raw_request = raw_request.clone(rel_url=raw_request.rel_url.with_path(_NS_ALIAS))
        return await super().__call__(raw_request)

    async def _handle(self, request: rendering.Request) -> Any:
        # Skip kmock's own bookkeeping of writes: the fallbacks below do an API server's.
        seen = _namespace_as_object(request)
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
        """Status separation, pruning, defaulting, validation: the object to store, and the
        warnings to send."""
        to_status = request.subresource == "status"
        after = writes.separate_status(before, after, to_status=to_status, has_status=kind.status)
        after.setdefault("apiVersion", kind.api_version)
        after.setdefault("kind", kind.kind)
        name = after.get("metadata", {}).get("name", "")
        if kind.plural == "customresourcedefinitions":
            _check_crd(kind, name, after)
        if kind.schema is None:
            return after, []
        after, unknown = schema.prune(kind.schema, after)
        directive = request.params.get("fieldValidation", "Warn")
        texts = [f'unknown field "{path}"' for path in unknown]
        if texts and directive == "Strict":
            raise errors.bad_request(
                f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}:'
                f" strict decoding error: {', '.join(texts)}"
            )
        after = schema.apply_defaults(kind.schema, after)
        causes = schema.validate(kind.schema, after)
        if not causes:
            old = before if before is not None else ABSENT
            causes = check_rules(kind.schema, after, old)
        if before is not None:
            old_defaulted = schema.apply_defaults(kind.schema, copy.deepcopy(before))
            causes = schema.ratchet(causes, old_defaulted, after)
        if causes:
            raise errors.invalid(kind.kind, kind.group, name, causes)
        return after, texts if directive == "Warn" else []

    def _respond(self, status: int, obj: dict[str, Any], warnings: list[str]) -> Any:
        header = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)
        return rendering.Response(status=status, payload=obj, headers={"Warning": header or None})

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
        if labels and not _matches_labels(meta.get("labels") or {}, labels):
            return False
        return not (fields and not _field_matches(obj, fields))

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
            raise errors.invalid(kind.kind, kind.group, "", [_REQUIRED_NAME])
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
            self._store(kind, key, after, "MODIFIED")
            self._store(kind, key, after, "DELETED")
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

    # --- OpenAPI -----------------------------------------------------------------------

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


_NS_ALIAS = "/api/v1/namespaces-collection"


def _namespace_as_object(request: rendering.Request) -> rendering.Request:
    """kmock reads `/api/v1/namespaces/NAME` as "namespace NAME, no resource"; it is the
    Namespace object NAME."""
    if request.url.path == _NS_ALIAS:
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


def _check_crd(kind: Kind, name: str, crd: dict[str, Any]) -> None:
    causes = []
    for i, version in enumerate(crd.get("spec", {}).get("versions", [])):
        found = version.get("schema", {}).get("openAPIV3Schema")
        if found is not None:
            causes += compile_errors(found, f"spec.versions[{i}].schema.openAPIV3Schema")
    if causes:
        raise errors.invalid(kind.kind, kind.group, name, causes)


_REQUIRED_NAME = schema.Cause(
    "metadata.name", "FieldValueRequired", "Required value: name or generateName is required"
)

__all__ = ["HoistKubeEmulator", "Kind", "enums"]
