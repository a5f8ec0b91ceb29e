"""`s3://` and `hf://` sources: the syntax, and the policy's say over them (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    SourceRefusedError,
    SourceScheme,
    check_source,
)
from control_plane.api.lora_adapter import LoraAdapterSpec
from control_plane.api.store_sources import (
    HfRepo,
    S3Object,
    StoreUriError,
    parse_hf,
    parse_s3,
)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        pytest.param("s3://adapters/team-a/sql.tar.gz", S3Object("adapters", "team-a/sql.tar.gz"),
                     id="archive"),
        pytest.param("s3://adapters/team-a/sql/", S3Object("adapters", "team-a/sql/"), id="prefix"),
        pytest.param("s3://my.bucket-1/a", S3Object("my.bucket-1", "a"), id="dotted-bucket"),
    ],
)  # fmt: skip
def test_s3_uris(uri: str, parsed: S3Object) -> None:
    assert parse_s3(uri) == parsed
    assert parse_s3(uri).is_prefix is uri.endswith("/")


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("s3://bucket", id="no-key"),
        pytest.param("s3://bucket/", id="empty-key"),
        pytest.param("s3:///key", id="no-bucket"),
        pytest.param("s3://Bucket/key", id="uppercase-bucket"),
        pytest.param("s3://ab/key", id="short-bucket"),
        pytest.param("s3://evil.com:443@x/key", id="bucket-with-userinfo"),
        pytest.param("s3://bucket?x=1/key", id="bucket-with-query"),
        pytest.param("s3://a..b/key", id="bucket-dotdot"),
        pytest.param("s3://bucket/a/../b", id="key-dotdot"),
        pytest.param("s3://bucket/a\nb", id="key-newline"),
    ],
)
def test_s3_uris_refused(uri: str) -> None:
    with pytest.raises(StoreUriError):
        parse_s3(uri)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        pytest.param("hf://org/sql-lora", HfRepo("org/sql-lora", "main"), id="default-main"),
        pytest.param("hf://org/sql-lora@v1.2", HfRepo("org/sql-lora", "v1.2"), id="tag"),
        pytest.param("hf://gpt2", HfRepo("gpt2", "main"), id="no-org"),
        pytest.param("hf://org/r@refs/pr/1", HfRepo("org/r", "refs/pr/1"), id="pr-ref"),
        pytest.param("hf://org/r@" + "a" * 40, HfRepo("org/r", "a" * 40), id="commit"),
    ],
)
def test_hf_uris(uri: str, parsed: HfRepo) -> None:
    assert parse_hf(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("hf://", id="empty"),
        pytest.param("hf://org/repo/extra", id="three-parts"),
        pytest.param("hf://../repo", id="dotdot-org"),
        pytest.param("hf://org/..", id="dotdot-repo"),
        pytest.param("hf://org/repo@", id="empty-revision"),
        pytest.param("hf://org/repo@../../api", id="revision-climbs"),
        pytest.param("hf://org/repo@main?x=1", id="revision-query"),
        pytest.param("hf://org/repo@main#f", id="revision-fragment"),
        pytest.param("hf://evil.example.com:443/repo", id="a-host"),
        pytest.param("hf://org/re po", id="space"),
    ],
)
def test_hf_uris_refused(uri: str) -> None:
    with pytest.raises(StoreUriError):
        parse_hf(uri)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_an_hf_uri_never_yields_a_path_that_climbs_or_queries(rest: str) -> None:
    try:
        repo = parse_hf(f"hf://{rest}")
    except StoreUriError:
        return
    for part in (repo.repo_id, repo.revision):
        assert ".." not in part.split("/")
        assert not set(part) & set("?#%@:\\ ")


def test_store_schemes_are_allowed_by_default_and_by_the_policy_only() -> None:
    assert check_source("s3://adapters/a.tar", AdapterSourcePolicy()) == S3Object(
        "adapters", "a.tar"
    )
    assert check_source("hf://org/a@v1", AdapterSourcePolicy()) == HfRepo("org/a", "v1")
    https_only = AdapterSourcePolicy(schemes=[SourceScheme.HTTPS])
    for source in ("s3://adapters/a.tar", "hf://org/a"):
        with pytest.raises(SourceRefusedError) as refused:
            check_source(source, https_only)
        assert refused.value.reason == "SchemeNotAllowed"


@pytest.mark.parametrize(
    "source",
    ["s3://Bucket/a", "s3://bucket", "hf://org/repo@../x", "hf://a/b/c"],
)
def test_malformed_store_sources_are_invalid_not_allowed(source: str) -> None:
    with pytest.raises(SourceRefusedError) as refused:
        check_source(source, AdapterSourcePolicy())
    assert refused.value.reason == "InvalidSource"


def test_the_spec_accepts_store_sources_and_a_secret_ref() -> None:
    spec = LoraAdapterSpec.model_validate(
        {"baseModel": "m", "source": "hf://org/a@v1", "credentialsSecretRef": {"name": "hub.tok"}}
    )
    assert spec.credentials_secret_ref is not None
    assert spec.credentials_secret_ref.name == "hub.tok"
    with pytest.raises(ValueError, match="credentialsSecretRef"):
        LoraAdapterSpec.model_validate(
            {"baseModel": "m", "source": "s3://b/a", "credentialsSecretRef": {"name": "Bad_Name"}}
        )
