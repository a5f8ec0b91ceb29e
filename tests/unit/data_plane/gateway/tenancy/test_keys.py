"""Key files, digests and the constant-time key ring."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.tenancy.keys import (
    KeyFileError,
    bearer_token,
    digest,
    parse_key_file,
)

SECRET = "sk-team-a-0123456789"


def test_plaintext_and_hashed_entries_find_their_tenant() -> None:
    hashed = hashlib.sha256(b"sk-team-b-abcdefgh").hexdigest()
    ring = parse_key_file(f"# comment\nteam-a: {SECRET}\n\nteam-b: sha256:{hashed}\n")
    assert ring.lookup(SECRET.encode()) == "team-a"
    assert ring.lookup(b"sk-team-b-abcdefgh") == "team-b"
    assert ring.lookup(b"sk-nobody-00000000") is None
    assert ring.lookup(b"") is None


def test_only_digests_are_kept() -> None:
    ring = parse_key_file(f"team-a: {SECRET}\n")
    assert SECRET.encode() not in repr(ring).encode()
    assert ring.entries == ((digest(SECRET), "team-a"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team-a", "line 1: expected `tenant: key`"),
        ("team-a:   ", "line 1: expected `tenant: key`"),
        ("Team_A: sk-0123456789", "line 1: 'Team_A' is not a tenant name"),
        ("team-a: short", "line 1: a key must have at least 8 characters"),
        ("team-a: sha256:xyz", "line 1: `sha256:` must be followed by 64 hex digits"),
        (f"a: {SECRET}\nb: {SECRET}", "line 2: this key is listed twice"),
    ],
)
def test_bad_key_files_name_the_line_never_the_key(text: str, message: str) -> None:
    with pytest.raises(KeyFileError) as info:
        parse_key_file(text, "keys.txt")
    assert str(info.value) == f"keys.txt: {message}"
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer   abc ", b"abc"),
        (b"Basic abc", None),
        (b"Bearer", None),
        (b"", None),
    ],
)
def test_bearer_token(header: bytes, token: bytes | None) -> None:
    assert bearer_token(header) == token


_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=8, max_size=40)


@given(st.lists(_TOKEN, min_size=1, max_size=5, unique=True))
def test_every_listed_key_maps_to_its_own_tenant(keys: list[str]) -> None:
    ring = parse_key_file("\n".join(f"t{i}: {k}" for i, k in enumerate(keys)))
    for i, key in enumerate(keys):
        assert ring.lookup(key.encode()) == f"t{i}"
    probe = "not-" + keys[0]
    if probe not in keys:
        assert ring.lookup(probe.encode()) is None
