"""The adapter store on real files: digests, archives, links, caps, atomic install."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import aiohttp
import pytest

from control_plane.api.adapter_sources import AdapterSourcePolicy
from data_plane.inference.sidecar_runtime.fetch import AdapterStore
from data_plane.inference.sidecar_runtime.fetch_files import tree_digest
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError, parse_source


def make_adapter(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"r": 8}')
    (path / "adapter_model.safetensors").write_bytes(b"w" * 100)
    (path / "sub" / "extra.txt").write_text("x")
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AdapterStore]:
    policy = AdapterSourcePolicy(local_roots=[str(tmp_path)])  # tmp_path/dir is the install dir
    async with aiohttp.ClientSession() as http:
        yield AdapterStore(tmp_path / "dir", max_bytes=30_000, http=http, timeout=10, policy=policy)


async def fetch(store: AdapterStore, source: str, sha256: str | None = None) -> Path:
    parsed = parse_source(source, adapter_dir=PurePosixPath(store.directory))
    staged = await store.fetch(parsed, expected_sha256=sha256)
    return store.install("a", staged)


def test_tree_digest_is_the_documented_shell_pipeline(tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "a")
    shell = subprocess.run(
        "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True, cwd=adapter, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert tree_digest(adapter) == shell.stdout.split()[0]


async def test_a_directory_is_copied_verified_and_installed(
    store: AdapterStore, tmp_path: Path
) -> None:
    adapter = make_adapter(tmp_path / "a")
    installed = await fetch(store, str(adapter), tree_digest(adapter))
    assert installed.parent == store.path_of("a")
    assert installed.name == tree_digest(adapter)[:16]
    assert (installed / "sub" / "extra.txt").read_text() == "x"
    assert list((store.directory / ".staging").iterdir()) == []


async def test_an_archive_with_a_top_folder(store: AdapterStore, tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "a")
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(adapter, arcname="my-adapter")
    installed = await fetch(store, archive.as_uri())
    assert (installed / "adapter_config.json").is_file()


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        config = tarfile.TarInfo("adapter_config.json")
        config.size = 2
        tar.addfile(config, io.BytesIO(b"{}"))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return archive


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "member",
    [
        pytest.param(tarfile.TarInfo("../x"), id="dotdot"),
        pytest.param(tarfile.TarInfo("/etc/x"), id="absolute"),
        pytest.param(_symlink("w", "/etc/passwd"), id="symlink"),
        pytest.param(_hardlink("w", "/etc/passwd"), id="hardlink"),
    ],
)
async def test_archive_members_that_escape_are_refused(
    store: AdapterStore, tmp_path: Path, member: tarfile.TarInfo
) -> None:
    archive = _archive_with(tmp_path, member, b"data" if member.isfile() else b"")
    with pytest.raises(AdapterRefusedError) as caught:
        await fetch(store, str(archive))
    assert caught.value.reason == "PathEscape"
    assert not (tmp_path / "x").exists()
    assert list((store.directory / ".staging").iterdir()) == []


async def test_an_archive_that_unpacks_over_the_cap_is_refused(
    store: AdapterStore, tmp_path: Path
) -> None:
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        big = tarfile.TarInfo("adapter_model.safetensors")
        big.size = 100_000
        tar.addfile(big, io.BytesIO(b"\0" * 100_000))
    assert archive.stat().st_size < 30_000  # small on the wire, large unpacked
    with pytest.raises(AdapterRefusedError) as caught:
        await fetch(store, str(archive))
    assert (caught.value.reason, caught.value.status) == ("AdapterTooLarge", 413)


async def test_a_wrong_digest_leaves_nothing_behind(store: AdapterStore, tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "a")
    with pytest.raises(AdapterRefusedError) as caught:
        await fetch(store, str(adapter), "0" * 64)
    assert caught.value.reason == "DigestMismatch"
    assert tree_digest(adapter) in caught.value.message
    assert list((store.directory / ".staging").iterdir()) == []
    assert not store.path_of("a").exists()


async def test_a_link_under_a_root_is_judged_by_where_it_leads(
    store: AdapterStore, tmp_path: Path
) -> None:
    """The probe of docs/security.md: a path that resolves into the install directory (here
    another adapter's installed copy) or out of every root is refused once resolved."""
    installed = await fetch(store, str(make_adapter(tmp_path / "a")))
    (tmp_path / "to-installed").symlink_to(installed)
    outside = make_adapter(tmp_path.parent / f"{tmp_path.name}-outside")
    (tmp_path / "to-outside").symlink_to(outside)
    for link in ("to-installed", "to-outside"):
        with pytest.raises(AdapterRefusedError) as caught:
            await fetch(store, str(tmp_path / link))
        assert caught.value.reason == "SourceNotAllowed", link
        assert caught.value.status == 422
        assert str(installed) not in caught.value.message
    assert list((store.directory / ".staging").iterdir()) == []
