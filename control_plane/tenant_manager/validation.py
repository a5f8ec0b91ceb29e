"""Is a Tenant usable? The checks the operator and `hoist up` share (pure).

A Tenant can be well-typed and still useless: its key Secret missing or empty, a key
malformed or shared with another tenant, a model id in `allowedModels` that names
nothing, quotas that contradict each other. Each problem names the field it is about, in
the YAML's own spelling, and a reason a program can switch on. No message ever holds a
key: keys are turned into SHA-256 digests as soon as they are read, and only the
digests are compared.

Key entries and key files follow the rules the gateway enforces, from one place
(`control_plane/api/api_keys.py`): plaintext of at least 8 characters, or
`sha256:<64 hex>`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from control_plane.api import Tenant, TenantSpec
from control_plane.api.api_keys import KeyFormatError, key_digest, key_file_lines

MAX_LISTED_MODELS = 100
"""`status.allowedModels` lists at most this many ids."""

_GLOB_CHARS = frozenset("*?[")


class TenantReason(StrEnum):
    """Why a Tenant is (not) ready: the `reason` of its `Ready` condition."""

    READY = "TenantReady"
    INVALID_SPEC = "InvalidSpec"
    INVALID_QUOTA = "InvalidQuota"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a reason, not a secret
    SECRET_FORBIDDEN = "SecretForbidden"  # noqa: S105 - a reason, not a secret
    NO_KEYS = "NoKeys"
    INVALID_KEY = "InvalidKey"
    DUPLICATE_KEY = "DuplicateKey"
    UNKNOWN_MODEL = "UnknownModel"


SPEC_REASONS = frozenset({TenantReason.INVALID_SPEC, TenantReason.INVALID_QUOTA})
"""Reasons that only a change of the Tenant itself can fix."""


@dataclass(frozen=True)
class TenantProblem:
    reason: TenantReason
    field: str
    """Where, e.g. `spec.quotas.tokensPerMinute`; empty when about the whole tenant."""
    message: str
    """A sentence for a person; never a key."""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class KeySet:
    """The digests of one tenant's keys, each labelled by where it was found."""

    digests: tuple[tuple[str, bytes], ...] = ()
    """(label, digest), e.g. (`entry "ci"`, ...) or (`line 3`, ...)."""
    problems: tuple[TenantProblem, ...] = ()


# --- Kubernetes: a Secret per tenant ------------------------------------------------


def secret_keys(secret: Mapping[str, Any], *, secret_name: str) -> KeySet:
    """The keys of a Secret as the API returns it (`data`: base64 values)."""
    where = "spec.apiKeysSecret.name"
    data = secret.get("data")
    if not isinstance(data, Mapping) or not data:
        return KeySet(
            problems=(
                TenantProblem(
                    TenantReason.NO_KEYS,
                    where,
                    f'Secret "{secret_name}" has no entries (each data entry is one API key)',
                ),
            )
        )
    digests: list[tuple[str, bytes]] = []
    problems: list[TenantProblem] = []
    for entry, encoded in sorted(data.items(), key=lambda item: str(item[0])):
        label = f'entry "{entry}"'
        try:
            key = base64.b64decode(str(encoded), validate=True).decode()
            digests.append((label, key_digest(key)))
        except (binascii.Error, UnicodeDecodeError):
            problems.append(_bad_key(where, secret_name, label, "is not base64-encoded UTF-8"))
        except KeyFormatError as exc:
            problems.append(_bad_key(where, secret_name, label, f"is not a valid key: {exc}"))
    return KeySet(tuple(digests), tuple(problems))


def _bad_key(where: str, secret_name: str, label: str, what: str) -> TenantProblem:
    return TenantProblem(TenantReason.INVALID_KEY, where, f'Secret "{secret_name}": {label} {what}')


def kube_keys(
    tenant: Tenant,
    secrets: Mapping[str, Mapping[str, Any]],
    forbidden: frozenset[str] = frozenset(),
) -> KeySet:
    """The tenant's keys from the Secrets of its namespace that were found, by name
    (`forbidden`: those the API refused to show the operator)."""
    ref = tenant.spec.api_keys_secret
    if ref is None:
        return KeySet(
            problems=(
                TenantProblem(
                    TenantReason.NO_KEYS,
                    "spec.apiKeysSecret",
                    "not set: the tenant has no API key, so none of its requests can authenticate",
                ),
            )
        )
    if ref.name in forbidden:
        return KeySet(
            problems=(
                TenantProblem(
                    TenantReason.SECRET_FORBIDDEN,
                    "spec.apiKeysSecret.name",
                    f'the operator may not read Secret "{ref.name}" in namespace '
                    f'"{tenant.metadata.namespace}" (its RBAC needs `get` on secrets there)',
                ),
            )
        )
    secret = secrets.get(ref.name)
    if secret is None:
        return KeySet(
            problems=(
                TenantProblem(
                    TenantReason.SECRET_NOT_FOUND,
                    "spec.apiKeysSecret.name",
                    f'no Secret "{ref.name}" in namespace "{tenant.metadata.namespace}"',
                ),
            )
        )
    return secret_keys(secret, secret_name=ref.name)


# --- The embedded default: one key file for all tenants -----------------------------


@dataclass(frozen=True)
class KeyFile:
    """A parsed key file: each tenant's keys, and what is wrong with lines of the file."""

    tenants: Mapping[str, KeySet] = field(default_factory=dict)
    line_problems: tuple[tuple[int, str], ...] = ()
    """(1-based line, message) for lines the gateway would refuse."""


def parse_key_file(text: str) -> KeyFile:
    """`tenant: key` lines, as the gateway reads them (blank lines and `#` comments skipped).

    The gateway refuses the whole file for any bad line, so every bad line is reported.
    """
    found: dict[str, list[tuple[str, bytes]]] = {}
    problems: list[tuple[int, str]] = []
    for line in key_file_lines(text):
        if line.problem is not None:
            problems.append((line.number, line.problem))
        else:
            found.setdefault(line.tenant, []).append((f"line {line.number}", line.digest))
    return KeyFile({t: KeySet(tuple(d)) for t, d in found.items()}, tuple(problems))


# --- Across tenants -------------------------------------------------------------------


def duplicate_keys(keys: Mapping[str, KeySet]) -> dict[str, list[TenantProblem]]:
    """Each tenant's keys that repeat another key, of its own or of another tenant.

    The gateway keeps the first of two equal keys and drops the other (or, reading a key
    file, refuses the file), so both tenants are told.
    """
    where: dict[bytes, list[tuple[str, str]]] = {}
    for tenant in sorted(keys):
        for label, digest in keys[tenant].digests:
            where.setdefault(digest, []).append((tenant, label))
    out: dict[str, list[TenantProblem]] = {}
    for holders in where.values():
        if len(holders) < 2:
            continue
        for tenant, label in holders:
            others = [
                other_label if other == tenant else f'{other_label} of Tenant "{other}"'
                for other, other_label in holders
                if (other, other_label) != (tenant, label)
            ]
            out.setdefault(tenant, []).append(
                TenantProblem(
                    TenantReason.DUPLICATE_KEY,
                    "spec.apiKeysSecret.name",
                    f"{label} is the same key as {', '.join(others)}",
                )
            )
    return out


# --- The spec itself, and the models it names -----------------------------------------


def quota_problems(spec: TenantSpec) -> list[TenantProblem]:
    """Quotas each valid alone but contradicting each other."""
    quotas = spec.quotas
    rpm, tpm = quotas.requests_per_minute, quotas.tokens_per_minute
    problems = []
    if rpm is not None and tpm is not None and tpm < rpm:
        problems.append(
            TenantProblem(
                TenantReason.INVALID_QUOTA,
                "spec.quotas.tokensPerMinute",
                f"{tpm} is below requestsPerMinute ({rpm}): every request counts at least "
                "one token, so requestsPerMinute could never be reached",
            )
        )
    return problems


@dataclass(frozen=True)
class Catalog:
    """The model ids a tenant could be given: Models and LoraAdapters, with their owner."""

    owners: Mapping[str, str | None] = field(default_factory=dict)
    """id -> the tenant it is dedicated to (`spec.tenant`), or None when shared."""

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str | None]]) -> Catalog:
        owners: dict[str, str | None] = {}
        for name, owner in entries:
            owners.setdefault(name, owner)
        return cls(owners)


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def resolve_models(tenant: Tenant, catalog: Catalog) -> tuple[list[str], list[TenantProblem]]:
    """The ids the tenant may use now, and the exact ids in `allowedModels` naming nothing.

    Globs may match nothing yet (adapters come and go); an exact id must exist.
    """
    name = tenant.metadata.name
    patterns = tenant.spec.allowed_models
    usable = sorted(
        model
        for model, owner in catalog.owners.items()
        if owner == name or (owner is None and any(fnmatchcase(model, p) for p in patterns))
    )
    problems = []
    for index, pattern in enumerate(patterns):
        if is_glob(pattern):
            continue
        where = f"spec.allowedModels[{index}]"
        if pattern not in catalog.owners:
            message = f'no Model or LoraAdapter named "{pattern}"'
            problems.append(TenantProblem(TenantReason.UNKNOWN_MODEL, where, message))
            continue
        owner = catalog.owners[pattern]
        if owner is not None and owner != name:
            message = f'"{pattern}" is dedicated to Tenant "{owner}"; no other tenant may use it'
            problems.append(TenantProblem(TenantReason.UNKNOWN_MODEL, where, message))
    return usable, problems


@dataclass(frozen=True)
class TenantReport:
    """Everything a Tenant's status says, from one look at its surroundings."""

    problems: tuple[TenantProblem, ...]
    keys: int
    """Distinct valid keys (duplicates of another tenant's keys included)."""
    allowed_models: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def spec_invalid(self) -> bool:
        return any(p.reason in SPEC_REASONS for p in self.problems)


def check_tenant(
    tenant: Tenant,
    keys: KeySet,
    catalog: Catalog,
    *,
    duplicates: Iterable[TenantProblem] = (),
) -> TenantReport:
    """Every problem of one tenant, most fundamental first: spec, keys, then models."""
    usable, model_problems = resolve_models(tenant, catalog)
    key_problems = list(keys.problems)
    if not keys.digests and not key_problems:
        key_problems.append(TenantProblem(TenantReason.NO_KEYS, "", "the tenant has no API key"))
    problems = [*quota_problems(tenant.spec), *key_problems, *duplicates, *model_problems]
    return TenantReport(
        problems=tuple(problems),
        keys=len({digest for _, digest in keys.digests}),
        allowed_models=tuple(usable[:MAX_LISTED_MODELS]),
    )
