"""Where an adapter comes from, checked before a byte is fetched (pure).

A source is a local path, a `file://` URI, an `http(s)://` URL or an `s3://` URI. A
relative local path is read inside the adapter directory and may not climb out of it; no
local path may contain `..`. Symlinks are checked when the files are read (`fetch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from control_plane.api.common import DNS_LABEL_PATTERN

_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_NAME = re.compile(DNS_LABEL_PATTERN)
MAX_NAME_LENGTH = 63


class AdapterRefusedError(Exception):
    """A request about an adapter that is refused for a reason its sender can fix.

    `reason` is a CamelCase word a program can switch on; `status` the HTTP status the
    sidecar answers with; the message is a sentence for a person.
    """

    def __init__(self, reason: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class LocalSource:
    path: PurePosixPath
    """Absolute path of a directory or a tar archive."""
    confined_to: PurePosixPath | None = None
    """For a relative source: the directory it must stay in once symlinks are resolved."""


@dataclass(frozen=True)
class HttpSource:
    url: str
    """URL of a tar archive (optionally gzip-compressed) of the adapter directory."""


@dataclass(frozen=True)
class S3Source:
    bucket: str
    key: str


Source = LocalSource | HttpSource | S3Source


def check_name(name: str) -> str:
    """Return `name` if it can be an adapter name (a DNS label, as resource names are)."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise AdapterRefusedError(
            "InvalidName",
            f"adapter name {name!r} must be a DNS label: lowercase letters, digits and '-',"
            f" at most {MAX_NAME_LENGTH} characters",
        )
    return name


def check_sha256(sha256: str | None) -> str | None:
    if sha256 is not None and not _SHA256.match(sha256):
        raise AdapterRefusedError("InvalidSha256", "sha256 must be 64 lowercase hex digits")
    return sha256


def _local(path: PurePosixPath, adapter_dir: PurePosixPath, source: str) -> LocalSource:
    if ".." in path.parts:
        raise AdapterRefusedError(
            "PathEscape", f"source {source!r} contains '..'; give a path without it"
        )
    if not path.is_absolute():
        return LocalSource(adapter_dir / path, confined_to=adapter_dir)
    return LocalSource(path)


def parse_source(source: str, *, adapter_dir: PurePosixPath) -> Source:
    """Classify `source`, refusing what can never be fetched.

    `adapter_dir` must be absolute; relative local paths are read inside it.
    """
    if not source or source != source.strip():
        raise AdapterRefusedError("InvalidSource", "source must be a non-empty path or URI")
    if "\x00" in source:
        raise AdapterRefusedError("InvalidSource", "source contains a NUL byte")
    scheme, sep, _ = source.partition("://")
    if not sep:
        return _local(PurePosixPath(source), adapter_dir, source)
    parts = urlsplit(source)
    scheme = scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise AdapterRefusedError("InvalidSource", f"file URI {source!r} names a remote host")
        path = PurePosixPath(unquote(parts.path))
        if not path.is_absolute():
            raise AdapterRefusedError(
                "InvalidSource", f"file URI {source!r} needs an absolute path"
            )
        return _local(path, adapter_dir, source)
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise AdapterRefusedError("InvalidSource", f"URL {source!r} has no host")
        return HttpSource(source)
    if scheme == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise AdapterRefusedError(
                "InvalidSource", f"s3 URI {source!r} needs a bucket and a key"
            )
        return S3Source(parts.netloc, key)
    raise AdapterRefusedError(
        "UnsupportedScheme",
        f"unsupported scheme {scheme}://; use a local path, file://, http(s):// or s3://",
    )


def is_within(path: PurePosixPath, root: PurePosixPath) -> bool:
    """Whether the (already resolved) `path` lies inside the (resolved) `root`."""
    return path == root or root in path.parents
