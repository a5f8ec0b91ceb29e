"""The files of a fetch: the staged copy, digests, and copies and tar extraction that
refuse what escapes the adapter or exceeds the size cap.

The digest of an archive is the sha256 of its bytes; the digest of a directory is the
sha256 of its manifest, the output of
`cd DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError, is_within

ADAPTER_CONFIG = "adapter_config.json"
CHUNK = 1 << 16
"""Bytes read or written at a time."""


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
        lines.append(f"{file_digest(path)}  {rel}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """The sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def too_large(max_bytes: int) -> AdapterRefusedError:
    return AdapterRefusedError(
        "AdapterTooLarge", f"the adapter exceeds the size cap of {max_bytes} bytes", status=413
    )


def tree_size(root: Path) -> int:
    """Bytes in the regular files under `root`."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def copy_file(src: Path, dst: Path, max_bytes: int) -> str:
    """Copy one file, refusing it over `max_bytes`; its sha256."""
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()


def copy_tree(src: Path, dst: Path, max_bytes: int) -> None:
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
            if total > max_bytes:
                raise too_large(max_bytes)
            shutil.copyfile(path, dst / path.relative_to(src))


def extract_archive(archive: Path, workdir: Path, max_bytes: int) -> Path:
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
            if total > max_bytes:
                raise too_large(max_bytes)
        tar.extractall(target, members=members, filter="data")
    entries = list(target.iterdir())
    if not (target / ADAPTER_CONFIG).exists() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target
