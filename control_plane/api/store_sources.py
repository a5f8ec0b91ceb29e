"""Object-store sources: `s3://bucket/key` and `hf://org/repo@revision` (pure).

Both name an object inside a store the operator configures (`AWS_ENDPOINT_URL`,
`HF_ENDPOINT`), never a host: the syntax below is strict so that a tenant's bucket, repo or
revision cannot grow into a host name, a path segment or a query on the operator's endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

S3_BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
"""S3's bucket naming rules (3-63 lowercase letters, digits, '.' and '-')."""
HF_REPO_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"
"""A Hub repository id: `name` or `org/name`."""
HF_REVISION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$"
"""A branch, tag or commit (`refs/pr/1` included); `..` is refused separately."""
DEFAULT_HF_REVISION = "main"

_BUCKET = re.compile(S3_BUCKET_PATTERN)
_REPO = re.compile(HF_REPO_PATTERN)
_REVISION = re.compile(HF_REVISION_PATTERN)


class StoreUriError(ValueError):
    """An `s3://` or `hf://` URI that names no object; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    """An object's key (an archive), or a prefix ending in `/` (an unpacked adapter)."""

    @property
    def is_prefix(self) -> bool:
        return self.key.endswith("/")


@dataclass(frozen=True, slots=True)
class HfRepo:
    repo_id: str
    """`org/name` (or `name`) of a model repository."""
    revision: str = DEFAULT_HF_REVISION


def parse_s3(uri: str) -> S3Object:
    """`s3://bucket/key` or `s3://bucket/prefix/`; raises StoreUriError."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise StoreUriError("an s3:// URI needs a bucket and a key (or a prefix ending in '/')")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise StoreUriError("an s3:// URI must name a valid bucket (lowercase, 3-63 characters)")
    if any(c in key for c in "\x00\r\n") or ".." in key.split("/"):
        raise StoreUriError("an s3:// key may not contain '..' or control characters")
    return S3Object(bucket, key)


def parse_hf(uri: str) -> HfRepo:
    """`hf://org/repo` or `hf://org/repo@revision`; raises StoreUriError."""
    repo_id, at, revision = uri.split("://", 1)[1].partition("@")
    if not _REPO.match(repo_id) or ".." in repo_id:
        raise StoreUriError("an hf:// URI must be hf://org/repo or hf://org/repo@revision")
    if at and (not _REVISION.match(revision) or ".." in revision.split("/")):
        raise StoreUriError("an hf:// revision must be a branch, tag or commit")
    return HfRepo(repo_id, revision if at else DEFAULT_HF_REVISION)
