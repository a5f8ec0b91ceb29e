"""Read the YAML documents a user would `kubectl apply` into typed resources.

Pure: files in, resources or a precise error out. Every error names the file, the
document's position and name, and the field, so `hoist up` can refuse a bad declaration
before it starts anything:

    examples/bad.yaml: document 2 (LoraAdapter "sql-lora"): spec.baseModel: no Model named "x"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from control_plane.api import LoraAdapter, Model, Tenant
from control_plane.api.constants import (
    API_VERSION,
    GROUP,
    LORA_ADAPTER_KIND,
    MODEL_KIND,
    TENANT_KIND,
)
from control_plane.tenant_manager.validation import (
    Catalog,
    duplicate_keys,
    parse_key_file,
    quota_problems,
    resolve_models,
)

YAML_SUFFIXES = (".yaml", ".yml")

_KINDS: dict[str, type[Model] | type[LoraAdapter] | type[Tenant]] = {
    MODEL_KIND: Model,
    LORA_ADAPTER_KIND: LoraAdapter,
    TENANT_KIND: Tenant,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one document."""

    file: str
    document: int
    """1-based position of the document in its file; 0 for a problem of the whole file."""
    what: str
    """`Kind "name"` when known."""
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: document {self.document}" if self.document else self.file
        if self.what:
            where += f" ({self.what})"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class DocumentsError(Exception):
    """The declarations cannot be used; `problems` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Declarations:
    """The resources the embedded default serves, in the order they were declared."""

    models: list[Model] = field(default_factory=list)
    adapters: list[LoraAdapter] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Documents of other API groups (Namespaces, Secrets...), which the embedded default
    does not use; listed so the caller can say so."""
    files: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) -> the file that declared it, to resolve relative paths against."""
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(kind, name) -> the 1-based position of its document in that file."""

    def model(self, name: str) -> Model | None:
        return next((m for m in self.models if m.metadata.name == name), None)


def yaml_files(path: Path) -> list[Path]:
    """The YAML files `path` names: itself, or those in the folder (not recursive), sorted."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
        if not files:
            raise DocumentsError([Problem(str(path), 0, "", "", "no .yaml or .yml files here")])
        return files
    if not path.exists():
        raise DocumentsError([Problem(str(path), 0, "", "", "no such file or directory")])
    return [path]


def load_paths(paths: Iterable[Path]) -> Declarations:
    """Parse, type-check and cross-check every document in `paths` (files or folders)."""
    sources: list[tuple[str, str]] = []
    for path in paths:
        sources.extend((str(f), f.read_text(encoding="utf-8")) for f in yaml_files(path))
    return parse_sources(sources)


def parse_sources(sources: Iterable[tuple[str, str]]) -> Declarations:
    """Like `load_paths`, for (file name, text) pairs."""
    found = Declarations()
    problems: list[Problem] = []
    origin: dict[tuple[str, str, str], Problem] = {}
    for file, text in sources:
        try:
            raw_docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            problems.append(Problem(file, _yaml_error_document(text, exc), "", "", _yaml_msg(exc)))
            continue
        for index, raw in enumerate(raw_docs, start=1):
            if raw is None:
                continue  # an empty document, e.g. a trailing `---`
            resource, problem = _parse_document(file, index, raw)
            if problem is not None:
                problems.append(problem)
                continue
            if resource is None:
                found.skipped.append(f"{file}: document {index} ({_what(raw)})")
                continue
            key = (resource.kind, resource.metadata.namespace, resource.metadata.name)
            here = Problem(file, index, _what(raw), "metadata.name", "")
            if key in origin:
                first = origin[key]
                problems.append(
                    Problem(
                        file,
                        index,
                        here.what,
                        "metadata.name",
                        f"declared twice (first in {first.file}: document {first.document})",
                    )
                )
                continue
            origin[key] = here
            found.files[(resource.kind, resource.metadata.name)] = file
            found.positions[(resource.kind, resource.metadata.name)] = index
            if isinstance(resource, Model):
                found.models.append(resource)
            elif isinstance(resource, Tenant):
                found.tenants.append(resource)
            else:
                found.adapters.append(resource)
    problems.extend(_cross_check(found, origin))
    if problems:
        raise DocumentsError(problems)
    return found


def _parse_document(
    file: str, index: int, raw: Any
) -> tuple[Model | LoraAdapter | Tenant | None, Problem | None]:
    if not isinstance(raw, dict):
        return None, Problem(file, index, "", "", f"expected a mapping, got {type(raw).__name__}")
    api_version = raw.get("apiVersion")
    kind = raw.get("kind")
    what = _what(raw)
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None, Problem(file, index, what, "", "apiVersion and kind are required")
    if not api_version.startswith(f"{GROUP}/"):
        return None, None  # not ours: skipped, not refused
    if api_version != API_VERSION:
        return None, Problem(
            file,
            index,
            what,
            "apiVersion",
            f"unsupported version {api_version!r}; use {API_VERSION}",
        )
    model_type = _KINDS.get(kind)
    if model_type is None:
        known = ", ".join(_KINDS)
        return None, Problem(file, index, what, "kind", f"unknown kind {kind!r}; known: {known}")
    try:
        return model_type.model_validate(raw), None
    except ValidationError as exc:
        return None, _first_problem(file, index, what, exc)


def _first_problem(file: str, index: int, what: str, exc: ValidationError) -> Problem:
    """The validation error as a Problem naming the field in the YAML's own spelling."""
    lines = []
    field_path = ""
    for error in exc.errors():
        path = _field_path(error["loc"])
        field_path = field_path or path
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(message if path == field_path else f"{path}: {message}")
    return Problem(file, index, what, field_path, "; ".join(lines))


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in ("int", "literal['all']", "str") or part.startswith(
            ("function-", "constrained-")
        ):
            continue  # pydantic's names for union branches, not fields
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def _cross_check(found: Declarations, origin: dict[tuple[str, str, str], Problem]) -> list[Problem]:
    problems = _adapter_problems(found, origin)
    catalog = Catalog.of(
        [(m.metadata.name, m.spec.tenant) for m in found.models]
        + [(a.metadata.name, a.spec.tenant) for a in found.adapters]
    )
    for tenant in found.tenants:
        where = origin[(tenant.kind, tenant.metadata.namespace, tenant.metadata.name)]
        _, model_problems = resolve_models(tenant, catalog)
        problems.extend(
            Problem(where.file, where.document, where.what, p.field, p.message)
            for p in [*quota_problems(tenant.spec), *model_problems]
        )
    return problems


def _adapter_problems(
    found: Declarations, origin: dict[tuple[str, str, str], Problem]
) -> list[Problem]:
    problems = []
    models = {(m.metadata.namespace, m.metadata.name) for m in found.models}
    for adapter in found.adapters:
        meta = adapter.metadata
        where = origin[(adapter.kind, meta.namespace, meta.name)]
        if (meta.namespace, meta.name) in models:  # a model id names one thing only
            problems.append(
                Problem(
                    where.file,
                    where.document,
                    where.what,
                    "metadata.name",
                    f'a Model is named "{meta.name}" too; an adapter needs a name of its own',
                )
            )
        if (meta.namespace, adapter.spec.base_model) in models:
            continue
        problems.append(
            Problem(
                where.file,
                where.document,
                where.what,
                "spec.baseModel",
                f'no Model named "{adapter.spec.base_model}" in namespace "{meta.namespace}"',
            )
        )
    return problems


def _what(raw: Any) -> str:
    if not isinstance(raw, dict):
        return ""
    kind = raw.get("kind") or "?"
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f'{kind} "{name}"' if name else str(kind)


def _yaml_msg(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"malformed YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"malformed YAML: {problem}"


def _yaml_error_document(text: str, exc: yaml.YAMLError) -> int:
    """1-based document number holding the error (counting `---` separators above it)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return 1
    above = text.splitlines()[: mark.line]
    separators = sum(1 for line in above if line.startswith("---"))
    starts_with_separator = text.lstrip().startswith("---")
    return max(1, separators + (0 if starts_with_separator else 1))


def dump(resource: BaseModel) -> dict[str, Any]:
    """A resource as the API would show it: camelCase, no unset optionals."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def resolve_relative_sources(found: Declarations) -> None:
    """Make adapters' relative local sources absolute, relative to the file declaring them."""
    for adapter in found.adapters:
        source = adapter.spec.source
        if "://" in source or Path(source).is_absolute():
            continue
        declared_in = Path(found.files[(adapter.kind, adapter.metadata.name)]).parent
        adapter.spec.source = str((declared_in / source).resolve())


KEYS_FILE_SETTING = "HOIST_GATEWAY_TENANT_KEYS_FILE"


def tenant_key_problems(found: Declarations, key_file: tuple[str, str] | None) -> list[Problem]:
    """What the gateway would refuse in the key file (name, text), or lack for a tenant.

    The gateway refuses a key file with any bad line, answers 401 to a key whose tenant is
    not declared, and a declared tenant without a key can never be used.
    """
    problems: list[Problem] = []
    declared = {t.metadata.name for t in found.tenants}
    with_keys: set[str] = set()
    if key_file is not None:
        name, text = key_file
        keys = parse_key_file(text)
        with_keys = set(keys.tenants)
        problems += [Problem(name, 0, "", f"line {n}", m) for n, m in keys.line_problems]
        for owner, key_set in sorted(keys.tenants.items()):
            if owner not in declared:
                first = key_set.digests[0][0]
                problems.append(
                    Problem(name, 0, "", first, f'no Tenant named "{owner}" is declared')
                )
        for tenant_problems in duplicate_keys(keys.tenants).values():
            problems += [Problem(name, 0, "", "", p.message) for p in tenant_problems]
    for tenant in found.tenants:
        if tenant.metadata.name in with_keys:
            continue
        where = found.files[(tenant.kind, tenant.metadata.name)]
        index = found.positions[(tenant.kind, tenant.metadata.name)]
        if key_file is None:
            fix = f"set {KEYS_FILE_SETTING} to a file of `{tenant.metadata.name}: <key>` lines"
        else:
            fix = f"add a `{tenant.metadata.name}: <key>` line to {key_file[0]}"
        problems.append(
            Problem(where, index, f'Tenant "{tenant.metadata.name}"', "", f"no API key: {fix}")
        )
    return problems


def check_tenant_keys(found: Declarations, key_file: Path | None) -> None:
    """Raise `DocumentsError` with every `tenant_key_problems` of the key file at `key_file`."""
    source: tuple[str, str] | None = None
    if key_file is not None:
        try:
            source = (str(key_file), key_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DocumentsError(
                [
                    Problem(
                        str(key_file),
                        0,
                        "",
                        "",
                        f"cannot read the key file ({KEYS_FILE_SETTING}): {reason}",
                    )
                ]
            ) from None
    problems = tenant_key_problems(found, source)
    if problems:
        raise DocumentsError(problems)
