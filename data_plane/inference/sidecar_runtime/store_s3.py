"""Fetch `s3://` sources with obstore: one archive, or every object under a prefix.

The store is configured by the standard AWS variables the sidecar runs with
(`AWS_ENDPOINT_URL` for an S3-compatible store, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...,
`AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint): those are the operator's and trusted. A
tenant names only a bucket and a key; credentials from the adapter's Secret, when the
control plane sends them, replace the ambient ones for that fetch.

Sizes are bounded twice: by what the store declares before a byte is read, and by what
arrives while streaming. Failures are reported in policy terms; the detail goes to the log
with every credential value scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    S3Source,
    SourceCredentials,
    error_detail,
)

if TYPE_CHECKING:
    from obstore import GetResult
    from obstore.store import S3Config

_CHUNK = 1 << 20
log = logging.getLogger(__name__)
TooLarge = Callable[[], AdapterRefusedError]


def _store(source: S3Source, credentials: SourceCredentials | None, timeout: float) -> S3Store:
    """A store for `source`'s bucket: the environment's settings, the Secret's keys if any."""
    config: S3Config = {}
    if credentials is not None and credentials.aws_access_key_id:
        config["access_key_id"] = credentials.aws_access_key_id
        config["secret_access_key"] = credentials.aws_secret_access_key or ""
        if credentials.aws_session_token:
            config["session_token"] = credentials.aws_session_token
    # No client_options: given, they would replace those read from the environment
    # (`AWS_ALLOW_HTTP`, ...). The fetch is bounded by the caller's timeout instead.
    return S3Store(
        source.bucket,
        config=config,
        retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=timeout)},
    )


def _uri(source: S3Source) -> str:
    return f"s3://{source.bucket}/{source.key}"


def not_found(source: S3Source) -> AdapterRefusedError:
    what = "no object under the prefix" if source.is_prefix else "no such object"
    return AdapterRefusedError("SourceNotFound", f"{_uri(source)}: {what}", status=422)


async def _save(result: GetResult, dst: Path, budget: int, too_large: TooLarge) -> tuple[int, str]:
    """Stream `result` into `dst`, at most `budget` bytes; the bytes written, their sha256."""
    size = 0
    digest = hashlib.sha256()
    with dst.open("wb") as out:
        async for chunk in result.stream(min_chunk_size=_CHUNK):
            size += len(chunk)
            if size > budget:
                raise too_large()
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


class S3Fetcher:
    """Downloads from the operator's S3 store into a staging directory."""

    def __init__(self, *, max_bytes: int, timeout: float, too_large: TooLarge) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._too_large = too_large

    async def archive(
        self, source: S3Source, dst: Path, credentials: SourceCredentials | None
    ) -> str:
        """GET the archive at `source` into `dst`; its sha256."""
        store = _store(source, credentials, self._timeout)
        with _reported(source, credentials):
            async with asyncio.timeout(self._timeout):
                result = await obstore.get_async(store, source.key)
                if result.meta["size"] > self._max_bytes:
                    raise self._too_large()
                _, sha256 = await _save(result, dst, self._max_bytes, self._too_large)
        return sha256

    async def tree(
        self, source: S3Source, dst: Path, credentials: SourceCredentials | None
    ) -> None:
        """GET every object under the prefix `source` into the directory `dst`."""
        store = _store(source, credentials, self._timeout)
        with _reported(source, credentials):
            async with asyncio.timeout(self._timeout):
                sizes = await self._list(store, source)
                budget = self._max_bytes
                for key in sorted(sizes):
                    target = dst / _relative(source, key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    result = await obstore.get_async(store, key)
                    size, _ = await _save(result, target, budget, self._too_large)
                    budget -= size

    async def _list(self, store: S3Store, source: S3Source) -> dict[str, int]:
        """The objects under the prefix and their declared sizes, within the cap."""
        sizes: dict[str, int] = {}
        async for batch in obstore.list(store, source.key, chunk_size=200):
            for meta in batch:
                sizes[meta["path"]] = meta["size"]
            if sum(sizes.values()) > self._max_bytes:
                raise self._too_large()
        if not sizes:
            raise not_found(source)
        return sizes


def _relative(source: S3Source, key: str) -> PurePosixPath:
    """Where the object `key` goes inside the adapter; refuses keys that would escape."""
    rel = PurePosixPath(key.removeprefix(source.key.rstrip("/")).lstrip("/"))
    if not rel.parts or rel.is_absolute() or any(p in ("", ".", "..") for p in rel.parts):
        raise AdapterRefusedError(
            "PathEscape", f"the object {key!r} does not lie inside {_uri(source)}", status=422
        )
    return rel


@contextlib.contextmanager
def _reported(source: S3Source, credentials: SourceCredentials | None) -> Iterator[None]:
    """Turn the store's errors into refusals in policy terms; log the scrubbed detail."""
    try:
        yield
    except AdapterRefusedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any store error: a refusal in policy terms
        uri = _uri(source)
        secrets = credentials.values() if credentials is not None else []
        log.warning("S3 fetch of %s failed: %s", uri, error_detail(exc, secrets))
        if isinstance(exc, TimeoutError):
            raise AdapterRefusedError(
                "DownloadFailed",
                "the adapter could not be downloaded: it took too long",
                status=502,
            ) from None
        if isinstance(exc, FileNotFoundError):
            raise not_found(source) from None
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            raise AdapterRefusedError(
                "AccessDenied",
                f"{uri}: the store refused access (check the adapter's credentials)",
                status=422,
            ) from None
        raise AdapterRefusedError(
            "DownloadFailed",
            "the adapter could not be downloaded: the store did not answer as expected",
            status=502,
        ) from None
