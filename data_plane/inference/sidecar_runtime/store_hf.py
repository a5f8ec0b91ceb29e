"""Fetch `hf://org/repo@revision` sources with huggingface_hub.

The Hub is the operator's (`HF_ENDPOINT`, huggingface.co when unset), and so is the default
token (`HF_TOKEN`); a token from the adapter's Secret replaces it for that fetch. The
revision is resolved to a commit once, and that commit is what is downloaded, so the files
listed (and sized against the cap before a byte is fetched) are the files fetched.
huggingface_hub is synchronous: it runs in a worker thread, bounded by the fetch timeout.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import HfApi, RepoFile, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    HfSource,
    SourceCredentials,
    error_detail,
)

log = logging.getLogger(__name__)
TooLarge = Callable[[], AdapterRefusedError]
_LOCAL_METADATA = ".cache"
"""What huggingface_hub keeps inside a `local_dir` (not part of the adapter)."""


def _uri(source: HfSource) -> str:
    return f"hf://{source.repo_id}@{source.revision}"


class HfFetcher:
    """Downloads a Hub model repository into a staging directory."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        token: str | None,
        max_bytes: int,
        timeout: float,
        too_large: TooLarge,
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._too_large = too_large

    async def tree(
        self, source: HfSource, dst: Path, credentials: SourceCredentials | None
    ) -> None:
        """Download every file of the repository at its revision into the directory `dst`."""
        token = (credentials.hf_token if credentials else None) or self._token
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.to_thread(self._download, source, dst, token)
        except AdapterRefusedError:
            raise
        except Exception as exc:  # noqa: BLE001 - any store error: a refusal in policy terms
            secrets = [token] if token else []
            log.warning(
                "Hub fetch of %s failed: %s",
                _uri(source),
                error_detail(exc, secrets),
            )
            raise _refusal(source, exc) from None

    def _download(self, source: HfSource, dst: Path, token: str | None) -> None:
        api = HfApi(endpoint=self._endpoint, token=token or False)
        commit = api.model_info(source.repo_id, revision=source.revision, timeout=self._timeout).sha
        if commit is None:
            raise _not_found(source)
        files = [
            entry
            for entry in api.list_repo_tree(source.repo_id, revision=commit, recursive=True)
            if isinstance(entry, RepoFile)
        ]
        if sum(f.size for f in files) > self._max_bytes:
            raise self._too_large()
        for entry in files:
            hf_hub_download(
                source.repo_id,
                entry.path,
                revision=commit,
                local_dir=dst,
                endpoint=self._endpoint,
                token=token or False,
                etag_timeout=self._timeout,
            )
        shutil.rmtree(dst / _LOCAL_METADATA, ignore_errors=True)
        if sum(p.stat().st_size for p in dst.rglob("*") if p.is_file()) > self._max_bytes:
            raise self._too_large()


def _not_found(source: HfSource) -> AdapterRefusedError:
    return AdapterRefusedError(
        "SourceNotFound",
        f"{_uri(source)}: no such repository or revision (or no access to it)",
        status=422,
    )


def _refusal(source: HfSource, exc: Exception) -> AdapterRefusedError:
    if isinstance(exc, GatedRepoError):
        return AdapterRefusedError(
            "AccessDenied",
            f"{_uri(source)}: the Hub refused access (check the adapter's token)",
            status=422,
        )
    if isinstance(exc, RepositoryNotFoundError | RevisionNotFoundError):
        return _not_found(source)
    if isinstance(exc, TimeoutError):
        return AdapterRefusedError(
            "DownloadFailed", "the adapter could not be downloaded: it took too long", status=502
        )
    return AdapterRefusedError(
        "DownloadFailed",
        "the adapter could not be downloaded: the Hub did not answer as expected",
        status=502,
    )
