"""Fetch a local source (a path or `file://`): a directory is copied, a file is read as a
tar archive; both checked against the source policy once symlinks are resolved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    SourceRefusedError,
    check_local_path,
)
from data_plane.inference.sidecar_runtime.fetch_files import (
    Staged,
    copy_file,
    copy_tree,
    extract_archive,
    tree_digest,
)
from data_plane.inference.sidecar_runtime.source_guard import refused
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError, LocalSource, is_within


def fetch_local(
    source: LocalSource,
    workdir: Path,
    *,
    tenant: str | None,
    policy: AdapterSourcePolicy,
    forbidden: Sequence[PurePosixPath],
    max_bytes: int,
) -> Staged:
    """Stage `source` in `workdir` (blocking: run it in a thread)."""
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
        check_local_path(PurePosixPath(real), policy, tenant=tenant, forbidden=forbidden)
    except SourceRefusedError as refusal:
        raise refused(refusal) from None
    if real.is_dir():
        target = workdir / "adapter"
        copy_tree(real, target, max_bytes)
        return Staged(target, tree_digest(target), workdir)
    if not real.is_file():
        raise AdapterRefusedError("SourceNotFound", f"{source.path} is not a file or directory")
    archive = workdir / "archive"
    sha = copy_file(real, archive, max_bytes)
    return Staged(extract_archive(archive, workdir, max_bytes), sha, workdir)
