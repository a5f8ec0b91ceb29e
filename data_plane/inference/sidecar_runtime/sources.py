"""Where an adapter comes from, checked before a byte is fetched (pure).

A source is a local path, a `file://` URI, an `http(s)://` URL, an `s3://` URI (a key: an
archive; a prefix ending in `/`: an unpacked adapter) or `hf://org/repo@revision` (a
Hugging Face model repository; `main` without a revision). A relative local path is read
inside the adapter directory and may not climb out of it; no local path may contain `..`.
Symlinks are checked when the files are read (`fetch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from control_plane.api.common import DNS_LABEL_PATTERN
from control_plane.api.store_sources import HfRepo, S3Object, StoreUriError, parse_hf, parse_s3

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


S3Source = S3Object
HfSource = HfRepo
Source = LocalSource | HttpSource | S3Source | HfSource


@dataclass(frozen=True)
class SourceCredentials:
    """Credentials for one fetch, from the Secret a LoraAdapter names: used for that fetch
    only, never stored, never shown (the repr hides them)."""

    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)

    def values(self) -> list[str]:
        """Every secret value set, to scrub them from what is logged."""
        given = (
            self.aws_access_key_id,
            self.aws_secret_access_key,
            self.aws_session_token,
            self.hf_token,
        )
        return [v for v in given if v]


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret value replaced (for log lines built from library errors)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def error_detail(exc: BaseException, secrets: list[str]) -> str:
    """One log line for the operator: the error's kind and first line, secrets scrubbed."""
    first = next(iter(str(exc).splitlines()), "")
    return redact(f"{type(exc).__name__}: {first}", secrets)


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
    if scheme in ("s3", "hf"):
        try:
            return parse_s3(source) if scheme == "s3" else parse_hf(source)
        except StoreUriError as exc:
            raise AdapterRefusedError("InvalidSource", f"{source!r}: {exc}") from None
    raise AdapterRefusedError(
        "UnsupportedScheme",
        f"unsupported scheme {scheme}://; use a local path, file://, http(s)://, s3:// or hf://",
    )


def is_within(path: PurePosixPath, root: PurePosixPath) -> bool:
    """Whether the (already resolved) `path` lies inside the (resolved) `root`."""
    return path == root or root in path.parents
