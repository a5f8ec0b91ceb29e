"""API keys -> tenants, holding only SHA-256 digests of the keys (pure).

A key file has one `tenant: key` entry per line; the key is plaintext (hashed on load,
then forgotten) or `sha256:<64 hex>`. Blank lines and `#` comments are skipped. Lookups
compare the presented key's digest with every stored digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_HEX = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class KeyFileError(ValueError):
    """The key file is malformed; the message names the line, never a key."""


def digest(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


def parse_key_entry(value: str) -> bytes:
    """The digest of one key entry: `sha256:<hex>` or a plaintext key."""
    value = value.strip()
    if value.startswith("sha256:"):
        hex_digest = value.removeprefix("sha256:").lower()
        if not _HEX.match(hex_digest):
            raise KeyFileError("`sha256:` must be followed by 64 hex digits")
        return bytes.fromhex(hex_digest)
    if len(value) < 8:
        raise KeyFileError("a key must have at least 8 characters")
    return digest(value)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """(digest, tenant) pairs; `lookup` returns the tenant of a presented key."""

    entries: tuple[tuple[bytes, str], ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, key: bytes) -> str | None:
        presented = digest(key)
        found: str | None = None
        for stored, tenant in self.entries:
            # No early exit: every lookup costs the same whichever entry matches.
            if hmac.compare_digest(presented, stored) and found is None:
                found = tenant
        return found


def parse_key_file(text: str, source: str = "key file") -> KeyRing:
    entries: list[tuple[bytes, str]] = []
    seen: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tenant, sep, value = stripped.partition(":")
        tenant = tenant.strip()
        if not sep or not value.strip():
            raise KeyFileError(f"{source}: line {number}: expected `tenant: key`")
        if not _TENANT.match(tenant) or len(tenant) > 63:
            raise KeyFileError(f"{source}: line {number}: {tenant!r} is not a tenant name")
        try:
            key_digest = parse_key_entry(value)
        except KeyFileError as exc:
            raise KeyFileError(f"{source}: line {number}: {exc}") from None
        if key_digest in seen:
            raise KeyFileError(f"{source}: line {number}: this key is listed twice")
        seen.add(key_digest)
        entries.append((key_digest, tenant))
    return KeyRing(tuple(entries))


def bearer_token(header: bytes) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header value; None if absent."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None
