from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    HfSource,
    HttpSource,
    LocalSource,
    S3Source,
    SourceCredentials,
    check_name,
    check_sha256,
    error_detail,
    is_within,
    parse_source,
)

DIR = PurePosixPath("/adapters")
P = PurePosixPath


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("/srv/a", LocalSource(P("/srv/a")), id="absolute"),
        pytest.param("up/a", LocalSource(P("/adapters/up/a"), confined_to=DIR), id="relative"),
        pytest.param("file:///srv/a%20b", LocalSource(P("/srv/a b")), id="file"),
        pytest.param("file://localhost/srv/a", LocalSource(P("/srv/a")), id="file-localhost"),
        pytest.param("http://h/a.tgz", HttpSource("http://h/a.tgz"), id="http"),
        pytest.param("HTTPS://h/a.tar", HttpSource("HTTPS://h/a.tar"), id="https-upper"),
        pytest.param("s3://bucket/k/a.tgz", S3Source("bucket", "k/a.tgz"), id="s3"),
        pytest.param("s3://bucket/k/", S3Source("bucket", "k/"), id="s3-prefix"),
        pytest.param("hf://org/a@v2", HfSource("org/a", "v2"), id="hf"),
        pytest.param("hf://org/a", HfSource("org/a", "main"), id="hf-main"),
    ],
)
def test_parse(source: str, expected: object) -> None:
    assert parse_source(source, adapter_dir=DIR) == expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        pytest.param("../etc", "PathEscape", id="relative-dotdot"),
        pytest.param("/srv/../etc/a", "PathEscape", id="absolute-dotdot"),
        pytest.param("file:///srv/../../etc", "PathEscape", id="file-dotdot"),
        pytest.param("ftp://h/a", "UnsupportedScheme", id="ftp"),
        pytest.param("gs://b/a", "UnsupportedScheme", id="gs"),
        pytest.param("file://evil/a", "InvalidSource", id="file-remote-host"),
        pytest.param("file://relative", "InvalidSource", id="file-no-path"),
        pytest.param("http:///a", "InvalidSource", id="http-no-host"),
        pytest.param("s3://bucket", "InvalidSource", id="s3-no-key"),
        pytest.param("s3://BUCKET/a", "InvalidSource", id="s3-bad-bucket"),
        pytest.param("hf://org/a@../b", "InvalidSource", id="hf-revision-climbs"),
        pytest.param("", "InvalidSource", id="empty"),
        pytest.param(" /a", "InvalidSource", id="spaces"),
        pytest.param("/a\x00b", "InvalidSource", id="nul"),
    ],
)
def test_refused(source: str, reason: str) -> None:
    with pytest.raises(AdapterRefusedError) as caught:
        parse_source(source, adapter_dir=DIR)
    assert caught.value.reason == reason
    assert caught.value.status == 400
    assert caught.value.message


@pytest.mark.parametrize("name", ["a", "sql-lora", "a1-b2", "x" * 63])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a_b", "a/b", "..", "-a", "a-", "x" * 64, "a.b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(AdapterRefusedError, match="DNS label"):
        check_name(name)


def test_sha256() -> None:
    assert check_sha256(None) is None
    assert check_sha256("a" * 64) == "a" * 64
    with pytest.raises(AdapterRefusedError):
        check_sha256("A" * 64)


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/a", "/a", True),
        ("/a/b/c", "/a", True),
        ("/ab", "/a", False),
        ("/", "/a", False),
    ],
)
def test_is_within(path: str, root: str, inside: bool) -> None:
    assert is_within(P(path), P(root)) is inside


def test_credentials_never_show_in_their_repr_nor_in_a_logged_error() -> None:
    creds = SourceCredentials(aws_access_key_id="AKIAKEY1", aws_secret_access_key="s3cr3t-v4lue")
    assert "AKIAKEY1" not in repr(creds)
    assert "s3cr3t-v4lue" not in repr(creds)
    exc = RuntimeError("signature for AKIAKEY1 with s3cr3t-v4lue did not match\nsecond line")
    detail = error_detail(exc, creds.values())
    assert detail == "RuntimeError: signature for [redacted] with [redacted] did not match"
