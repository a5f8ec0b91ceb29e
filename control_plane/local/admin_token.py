"""The admin API's credential: a random token in a file only this user can read.

`hoist up` issues a new token at every start (`<home>/run/admin-token`, mode 0600, in a
0700 folder) and removes it at exit. Every admin API route but `/healthz` asks for it as
`Authorization: Bearer <token>`: the gateway (`HOIST_GATEWAY_ADMIN_TOKEN_FILE`) and
`hoist status` read the file; another local user, or a tenant whose adapter source points
at 127.0.0.1, cannot.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path


def issue(path: Path) -> str:
    """Write a fresh token to `path` (0600, folder 0700) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)  # a file left by someone else is not reused
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    return token


def read(path: Path) -> str | None:
    """The token in `path`, or None when there is none to read."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def presented(authorization: str, token: str) -> bool:
    """Whether an `Authorization` header carries `token` (in constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
