from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from data_plane.inference.engine_api.source import (
    HubModel,
    LocalModel,
    ModelSourceError,
    RemoteModel,
    resolve_source,
)

CACHE = PurePosixPath("/cache")
P = PurePosixPath


def resolve(
    source: str, repository: str = "/repo", exists: frozenset[PurePosixPath] | None = None
) -> object:
    return resolve_source(source, repository=repository, cache_root=CACHE, exists=exists)


@pytest.mark.parametrize(
    ("source", "repository", "expected"),
    [
        pytest.param("/abs/m", "/repo", LocalModel(P("/abs/m")), id="absolute"),
        pytest.param("file:///abs/m%20x", "/repo", LocalModel(P("/abs/m x")), id="file-uri"),
        pytest.param("m", "/repo", LocalModel(P("/repo/m")), id="name-in-repo"),
        pytest.param("m", "file:///repo", LocalModel(P("/repo/m")), id="file-repo"),
    ],
)
def test_local(source: str, repository: str, expected: LocalModel) -> None:
    assert resolve(source, repository) == expected


def test_urls_are_cached_by_url() -> None:
    first = resolve("https://h/models/m.tar.gz")
    assert isinstance(first, RemoteModel)
    assert first.url == "https://h/models/m.tar.gz"
    assert first.cache_dir.parent == CACHE
    assert first.cache_dir.name.endswith("-m.tar.gz")
    other = resolve("https://h/other/m.tar.gz")
    assert isinstance(other, RemoteModel)
    assert other.cache_dir != first.cache_dir


def test_names_resolve_against_a_remote_repository() -> None:
    got = resolve("m.tar", "http://repo.example/models/")
    assert isinstance(got, RemoteModel)
    assert got.url == "http://repo.example/models/m.tar"


def test_missing_org_slash_name_goes_to_the_hub() -> None:
    assert resolve("HuggingFaceTB/SmolLM2", exists=frozenset()) == HubModel("HuggingFaceTB/SmolLM2")


def test_existing_org_slash_name_is_local() -> None:
    got = resolve("org/m", exists=frozenset({P("/repo/org/m")}))
    assert got == LocalModel(P("/repo/org/m"))


@pytest.mark.parametrize(
    ("source", "repository", "match"),
    [
        pytest.param("missing", "/repo", "prepare it first", id="missing-name"),
        pytest.param("../etc", "/repo", r"'\.\.'", id="dotdot"),
        pytest.param("s3://b/k", "/repo", "unsupported scheme s3", id="scheme"),
        pytest.param("m", "ftp://x", "MODEL_REPOSITORY", id="repo-scheme"),
        pytest.param("file://host/m", "/repo", "local path", id="file-host"),
    ],
)
def test_refused(source: str, repository: str, match: str) -> None:
    with pytest.raises(ModelSourceError, match=match):
        resolve(source, repository, exists=frozenset())
