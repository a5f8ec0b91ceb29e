"""API key entries and key files: the rules the gateway and the control plane share (pure).

A key entry is plaintext (at least 8 characters; hashed at once, then forgotten) or
`sha256:<64 hex>`. A key file has one `tenant: key` entry per line; blank lines and `#`
comments are skipped. The gateway enforces these rules (`data_plane/gateway/tenancy/keys.py`)
and the control plane reports breaches of them on Tenants and in `hoist validate`
(`control_plane/tenant_manager/validation.py`); both read them from here. Messages never
repeat a key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

_HEX = re.compile(r"^[0-9a-f]{64}$")
_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MIN_KEY_LENGTH = 8


class KeyFormatError(ValueError):
    """A key entry is not a valid key; the message never repeats it."""


def key_digest(value: str) -> bytes:
    """The SHA-256 digest of one key entry: `sha256:<hex>` or a plaintext key."""
    value = value.strip()
    if value.startswith("sha256:"):
        hex_digest = value.removeprefix("sha256:").lower()
        if not _HEX.match(hex_digest):
            raise KeyFormatError("`sha256:` must be followed by 64 hex digits")
        return bytes.fromhex(hex_digest)
    if len(value) < MIN_KEY_LENGTH:
        raise KeyFormatError(f"a key must have at least {MIN_KEY_LENGTH} characters")
    return hashlib.sha256(value.encode()).digest()


def is_tenant_name(name: str) -> bool:
    """A Tenant's name as Kubernetes allows it (an RFC 1123 label)."""
    return len(name) <= 63 and _TENANT_NAME.match(name) is not None


@dataclass(frozen=True, slots=True)
class KeyLine:
    """One entry line of a key file: its tenant and key digest, or what is wrong with it."""

    number: int
    """1-based."""
    tenant: str = ""
    digest: bytes = b""
    problem: str | None = None


def key_file_lines(text: str) -> Iterator[KeyLine]:
    """The entry lines of a key file, in order (blank lines and comments skipped)."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tenant, sep, value = stripped.partition(":")
        tenant = tenant.strip()
        if not sep or not value.strip():
            yield KeyLine(number, problem="expected `tenant: key`")
        elif not is_tenant_name(tenant):
            yield KeyLine(number, problem=f"{tenant!r} is not a tenant name")
        else:
            try:
                yield KeyLine(number, tenant, key_digest(value))
            except KeyFormatError as exc:
                yield KeyLine(number, problem=str(exc))
