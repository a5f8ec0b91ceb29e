"""Tenants and their keys from Kubernetes objects: Tenant resources and Secrets (pure).

Each data entry of a tenant's Secret (`spec.apiKeysSecret`) is one key, base64-encoded
as Kubernetes stores it: plaintext or `sha256:<hex>` once decoded. A Secret that is
missing, or an entry that is not a valid key, leaves that key out (and is reported by
name, never by value); one bad Tenant never takes the others down.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import ValidationError

from control_plane.api import Tenant
from data_plane.gateway.tenancy.keys import KeyFileError, KeyRing, parse_key_entry
from data_plane.gateway.tenancy.policy import TenantPolicy, without_status


def from_objects(
    tenants: list[Any], secrets: dict[str, dict[str, Any]]
) -> tuple[dict[str, TenantPolicy], KeyRing, list[str]]:
    """Policies, keys and problems from Tenant documents and Secret documents by name."""
    policies: dict[str, TenantPolicy] = {}
    entries: list[tuple[bytes, str]] = []
    seen: set[bytes] = set()
    problems: list[str] = []
    for doc in tenants:
        try:
            tenant = Tenant.model_validate(without_status(doc))
        except ValidationError as exc:
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            problems.append(f"Tenant {name!r}: {exc.errors()[0]['msg']}")
            continue
        name = tenant.metadata.name
        policies[name] = TenantPolicy.from_tenant(tenant)
        ref = tenant.spec.api_keys_secret
        if ref is None:
            continue
        secret = secrets.get(ref.name)
        if secret is None:
            problems.append(f"Tenant {name!r}: no Secret {ref.name!r}")
            continue
        data = secret.get("data") or {}
        for entry, encoded in sorted(data.items()):
            try:
                key = base64.b64decode(str(encoded), validate=True).decode()
                digest = parse_key_entry(key)
            except (binascii.Error, UnicodeDecodeError, KeyFileError):
                problems.append(f"Secret {ref.name!r}: entry {entry!r} is not a valid key")
                continue
            if digest in seen:
                problems.append(f"Secret {ref.name!r}: entry {entry!r} repeats another key")
                continue
            seen.add(digest)
            entries.append((digest, name))
    return policies, KeyRing(tuple(entries)), problems
