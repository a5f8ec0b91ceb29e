"""Fetch an adapter into the adapter directory: size cap, digest check, atomic rename.

Layout of the adapter directory (a volume shared with the engine):

    <dir>/adapters/<name>/<sha>/  what the engine loads (adapter_config.json + weights)
    <dir>/.staging/          downloads and extractions in progress
    <dir>/.trash/            replaced versions, removed right after the swap
    <dir>/state.json         the desired set, so a restarted sidecar resumes it

One reader per source kind: `fetch_local` (paths, `file://`), `fetch_http` (`http(s)://`),
`store_s3` (`s3://`), `store_hf` (`hf://`); `fetch_files` holds the digests, copies and
safe extraction they share (and the digest definitions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath

import aiohttp

from control_plane.api.adapter_sources import AdapterSourcePolicy
from data_plane.inference.sidecar_runtime.fetch_files import (
    ADAPTER_CONFIG,
    Staged,
    extract_archive,
    too_large,
    tree_digest,
    tree_size,
)
from data_plane.inference.sidecar_runtime.fetch_http import HttpDownloader
from data_plane.inference.sidecar_runtime.fetch_local import fetch_local
from data_plane.inference.sidecar_runtime.source_guard import install_dirs
from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    HfSource,
    HttpSource,
    S3Source,
    Source,
    SourceCredentials,
)
from data_plane.inference.sidecar_runtime.store_hf import HfFetcher
from data_plane.inference.sidecar_runtime.store_s3 import S3Fetcher


class AdapterStore:
    """Fetches adapters into `<dir>/.staging` and swaps them into `<dir>/adapters`.

    `http` downloads only (give it a `GuardedResolver` with the same `policy`); every
    source is checked against `policy` where it is read: local paths once resolved,
    URLs and each redirect before they are followed. `s3://` and `hf://` sources are read
    from the stores the operator configured (`store_s3`, `store_hf`)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        http: aiohttp.ClientSession,
        timeout: float,
        policy: AdapterSourcePolicy,
        hf_endpoint: str | None = None,
        hf_token: str | None = None,
    ) -> None:
        self.directory = directory.resolve()
        self.max_bytes = max_bytes
        self.policy = policy
        self.forbidden = install_dirs(PurePosixPath(self.directory))
        self._http = HttpDownloader(http, timeout=timeout, policy=policy, max_bytes=max_bytes)
        refuse_size = lambda: too_large(max_bytes)  # noqa: E731 - one line, named by its use
        self._s3 = S3Fetcher(max_bytes=max_bytes, timeout=timeout, too_large=refuse_size)
        self._hf = HfFetcher(
            endpoint=hf_endpoint,
            token=hf_token,
            max_bytes=max_bytes,
            timeout=timeout,
            too_large=refuse_size,
        )
        for sub in ("adapters", ".staging", ".trash"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)

    def path_of(self, name: str) -> Path:
        return self.directory / "adapters" / name

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    async def fetch(
        self,
        source: Source,
        *,
        expected_sha256: str | None,
        tenant: str | None = None,
        credentials: SourceCredentials | None = None,
    ) -> Staged:
        """Fetch `source` into a fresh staging directory, verified; refuse with a reason.

        `credentials` (from the adapter's Secret) are used for this fetch only."""
        workdir = Path(tempfile.mkdtemp(prefix="fetch-", dir=self.directory / ".staging"))
        try:
            staged = await self._fetch(source, workdir, tenant, credentials)
            if expected_sha256 is not None and staged.sha256 != expected_sha256:
                raise AdapterRefusedError(
                    "DigestMismatch",
                    f"sha256 of the fetched adapter is {staged.sha256},"
                    f" not the expected {expected_sha256}",
                    status=422,
                )
            if not (staged.root / ADAPTER_CONFIG).is_file():
                raise AdapterRefusedError(
                    "InvalidAdapter",
                    f"the fetched adapter has no {ADAPTER_CONFIG} at its top level",
                    status=422,
                )
            size = await asyncio.to_thread(tree_size, staged.root)
            return dataclasses.replace(staged, size=size)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            raise

    async def _fetch(
        self,
        source: Source,
        workdir: Path,
        tenant: str | None,
        credentials: SourceCredentials | None,
    ) -> Staged:
        if isinstance(source, S3Source | HfSource):
            return await self._fetch_store(source, workdir, credentials)
        if isinstance(source, HttpSource):
            archive = workdir / "download"
            sha = await self._http.download(source.url, archive)
            return Staged(await asyncio.to_thread(self._extract, archive, workdir), sha, workdir)
        return await asyncio.to_thread(
            fetch_local,
            source,
            workdir,
            tenant=tenant,
            policy=self.policy,
            forbidden=self.forbidden,
            max_bytes=self.max_bytes,
        )

    async def _fetch_store(
        self, source: S3Source | HfSource, workdir: Path, credentials: SourceCredentials | None
    ) -> Staged:
        """An object store's archive (an S3 key) or tree (an S3 prefix, a Hub repository)."""
        if isinstance(source, S3Source) and not source.is_prefix:
            archive = workdir / "download"
            sha = await self._s3.archive(source, archive, credentials)
            return Staged(await asyncio.to_thread(self._extract, archive, workdir), sha, workdir)
        target = workdir / "adapter"
        target.mkdir()
        if isinstance(source, S3Source):
            await self._s3.tree(source, target, credentials)
        else:
            await self._hf.tree(source, target, credentials)
        return Staged(target, await asyncio.to_thread(tree_digest, target), workdir)

    def _extract(self, archive: Path, workdir: Path) -> Path:
        return extract_archive(archive, workdir, self.max_bytes)

    def install(self, name: str, staged: Staged) -> Path:
        """Move a staged adapter into `adapters/<name>/<digest prefix>` atomically."""
        final = self.path_of(name) / staged.sha256[:16]
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            self._trash(final)
        staged.root.rename(final)
        shutil.rmtree(staged.workdir, ignore_errors=True)
        return final

    def _trash(self, path: Path) -> None:
        old = self.directory / ".trash" / f"{path.name}-{uuid.uuid4().hex}"
        path.rename(old)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self, staged: Staged) -> None:
        shutil.rmtree(staged.workdir, ignore_errors=True)

    def remove_version(self, name: str, path: str) -> None:
        """Remove one installed version of `name` (never anything outside its folder)."""
        version = Path(path)
        if version.parent == self.path_of(name) and version.exists():
            self._trash(version)

    def remove(self, name: str) -> None:
        if self.path_of(name).exists():
            self._trash(self.path_of(name))

    def clean_staging(self) -> None:
        """Remove what an interrupted fetch or swap left behind (at start-up)."""
        for sub in (".staging", ".trash"):
            for leftover in (self.directory / sub).iterdir():
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
