"""API keys -> tenants, holding only SHA-256 digests of the keys (pure).

A key file has one `tenant: key` entry per line; the key is plaintext (hashed on load,
then forgotten) or `sha256:<64 hex>`. Blank lines and `#` comments are skipped. The rules
are the control plane's (`control_plane/api/api_keys.py`), so what `hoist validate` and a
Tenant's status accept is what the gateway loads. Lookups compare the presented key's
digest with every stored digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from control_plane.api.api_keys import KeyFormatError, key_digest, key_file_lines


class KeyFileError(ValueError):
    """The key file is malformed; the message names the line, never a key."""


def digest(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


def parse_key_entry(value: str) -> bytes:
    """The digest of one key entry: `sha256:<hex>` or a plaintext key."""
    try:
        return key_digest(value)
    except KeyFormatError as exc:
        raise KeyFileError(str(exc)) from None


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
    """The keys of a key file; any bad line refuses the whole file (named, never a key)."""
    entries: list[tuple[bytes, str]] = []
    seen: set[bytes] = set()
    for line in key_file_lines(text):
        if line.problem is not None:
            raise KeyFileError(f"{source}: line {line.number}: {line.problem}")
        if line.digest in seen:
            raise KeyFileError(f"{source}: line {line.number}: this key is listed twice")
        seen.add(line.digest)
        entries.append((line.digest, line.tenant))
    return KeyRing(tuple(entries))


def bearer_token(header: bytes) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header value; None if absent."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None


def presented(header: str, token: str) -> bool:
    """Whether an `Authorization` header value carries `token` (in constant time)."""
    given = bearer_token(header.encode("latin-1", "replace"))
    return given is not None and hmac.compare_digest(given, token.encode())
