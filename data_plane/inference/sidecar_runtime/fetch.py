"""Fetch an adapter into the adapter directory: size cap, digest check, atomic rename.

Layout of the adapter directory (a volume shared with the engine):

    <dir>/adapters/<name>/<sha>/  what the engine loads (adapter_config.json + weights)
    <dir>/.staging/          downloads and extractions in progress
    <dir>/.trash/            replaced versions, removed right after the swap
    <dir>/state.json         the desired set, so a restarted sidecar resumes it

The digest of an archive is the sha256 of its bytes; the digest of a directory is the
sha256 of its manifest, the output of
`cd DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import aiohttp
from yarl import URL

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    SourceRefusedError,
    check_local_path,
    check_url,
)
from data_plane.inference.sidecar_runtime.source_guard import (
    AddressRefusedError,
    install_dirs,
    refused,
)
from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    HfSource,
    HttpSource,
    LocalSource,
    S3Source,
    Source,
    SourceCredentials,
    is_within,
)
from data_plane.inference.sidecar_runtime.store_hf import HfFetcher
from data_plane.inference.sidecar_runtime.store_s3 import S3Fetcher

ADAPTER_CONFIG = "adapter_config.json"
_CHUNK = 1 << 16
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Staged:
    root: Path
    """The staged adapter directory (holds adapter_config.json)."""
    sha256: str
    workdir: Path
    """What to remove when the staged copy is discarded."""
    size: int = 0
    """Bytes fetched."""


def tree_digest(root: Path) -> str:
    """The sha256 of the `sha256sum` manifest of every regular file under `root`."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        lines.append(f"{_file_digest(path)}  {rel}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download_failed(why: str) -> AdapterRefusedError:
    return AdapterRefusedError(
        "DownloadFailed", f"the adapter could not be downloaded: {why}", status=502
    )


def _too_large(max_bytes: int) -> AdapterRefusedError:
    return AdapterRefusedError(
        "AdapterTooLarge", f"the adapter exceeds the size cap of {max_bytes} bytes", status=413
    )


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
        self._http = http
        self._timeout = timeout
        too_large = lambda: _too_large(max_bytes)  # noqa: E731 - one line, named by its use
        self._s3 = S3Fetcher(max_bytes=max_bytes, timeout=timeout, too_large=too_large)
        self._hf = HfFetcher(
            endpoint=hf_endpoint,
            token=hf_token,
            max_bytes=max_bytes,
            timeout=timeout,
            too_large=too_large,
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
            size = await asyncio.to_thread(_tree_size, staged.root)
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
            sha = await self._download(source.url, archive)
            return Staged(await asyncio.to_thread(self._extract, archive, workdir), sha, workdir)
        return await asyncio.to_thread(self._fetch_local, source, workdir, tenant)

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

    def _fetch_local(self, source: LocalSource, workdir: Path, tenant: str | None) -> Staged:
        given = Path(source.path)
        if not given.exists() and not given.is_symlink():
            raise AdapterRefusedError("SourceNotFound", f"no file or directory at {source.path}")
        real = given.resolve()
        if source.confined_to is not None and not is_within(
            PurePosixPath(real), PurePosixPath(Path(source.confined_to).resolve())
        ):
            raise AdapterRefusedError(
                "PathEscape", f"{source.path} resolves to {real}, outside the adapter directory"
            )
        try:
            check_local_path(
                PurePosixPath(real), self.policy, tenant=tenant, forbidden=self.forbidden
            )
        except SourceRefusedError as refusal:
            raise refused(refusal) from None
        if real.is_dir():
            target = workdir / "adapter"
            self._copy_tree(real, target)
            return Staged(target, tree_digest(target), workdir)
        if not real.is_file():
            raise AdapterRefusedError("SourceNotFound", f"{source.path} is not a file or directory")
        archive = workdir / "archive"
        sha = self._copy_file(real, archive)
        return Staged(self._extract(archive, workdir), sha, workdir)

    def _copy_file(self, src: Path, dst: Path) -> str:
        digest = hashlib.sha256()
        size = 0
        with src.open("rb") as fin, dst.open("wb") as fout:
            while chunk := fin.read(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large(self.max_bytes)
                digest.update(chunk)
                fout.write(chunk)
        return digest.hexdigest()

    def _copy_tree(self, src: Path, dst: Path) -> None:
        """Copy a directory, refusing links that lead out of it and trees over the cap."""
        total = 0
        for dirpath, dirnames, filenames in os.walk(src):
            here = Path(dirpath)
            (dst / here.relative_to(src)).mkdir(parents=True, exist_ok=True)
            for entry in [*dirnames, *filenames]:
                path = here / entry
                if path.is_symlink() and not is_within(
                    PurePosixPath(path.resolve()), PurePosixPath(src)
                ):
                    raise AdapterRefusedError(
                        "PathEscape",
                        f"{path} is a symlink to {path.resolve()}, outside the adapter",
                    )
            for entry in filenames:
                path = here / entry
                if not path.is_file():
                    raise AdapterRefusedError("InvalidAdapter", f"{path} is not a regular file")
                total += path.stat().st_size
                if total > self.max_bytes:
                    raise _too_large(self.max_bytes)
                shutil.copyfile(path, dst / path.relative_to(src))

    def _extract(self, archive: Path, workdir: Path) -> Path:
        """Extract a tar archive safely; return the adapter root inside it."""
        if not tarfile.is_tarfile(archive):
            raise AdapterRefusedError(
                "InvalidAdapter",
                "a file source must be a tar archive (optionally gzip-compressed) of the"
                " adapter directory",
                status=422,
            )
        target = workdir / "adapter"
        target.mkdir()
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise AdapterRefusedError(
                        "PathEscape", f"archive member {member.name!r} escapes the adapter"
                    )
                if not (member.isfile() or member.isdir()):
                    raise AdapterRefusedError(
                        "PathEscape",
                        f"archive member {member.name!r} is a link or special file; only"
                        " regular files and directories are accepted",
                    )
                total += member.size
                if total > self.max_bytes:
                    raise _too_large(self.max_bytes)
            tar.extractall(target, members=members, filter="data")
        entries = list(target.iterdir())
        if not (target / ADAPTER_CONFIG).exists() and len(entries) == 1 and entries[0].is_dir():
            return entries[0]
        return target

    async def _download(self, url: str, dst: Path) -> str:
        """GET `url` into `dst`, following redirects that the policy allows; the sha256.

        A failure is reported in policy terms only: what the remote answered, or why the
        network failed, goes to the log (for the operator), never into the refusal (which
        a tenant reads in its adapter's status)."""
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    check_url(url, self.policy)
                    async with self._http.get(url, timeout=timeout, allow_redirects=False) as resp:
                        if resp.status in _REDIRECTS and "location" in resp.headers:
                            url = str(resp.url.join(URL(resp.headers["location"])))
                            continue
                        if resp.status != 200:
                            log.warning("GET %s answered HTTP %s", url, resp.status)
                            raise _download_failed("the source answered with an error")
                        return await self._save(resp, dst)
                raise _download_failed(f"the source redirected more than {MAX_REDIRECTS} times")
        except SourceRefusedError as refusal:
            raise refused(refusal) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefusedError):
                raise refused(exc.os_error.refusal) from None
            log.warning("GET %s failed: %s", url, exc)
            raise _download_failed("the source could not be reached") from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("GET %s failed: %r", url, exc)
            raise _download_failed("the download did not complete") from exc

    async def _save(self, resp: aiohttp.ClientResponse, dst: Path) -> str:
        if resp.content_length is not None and resp.content_length > self.max_bytes:
            raise _too_large(self.max_bytes)
        digest = hashlib.sha256()
        size = 0
        with dst.open("wb") as out:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large(self.max_bytes)
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

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
