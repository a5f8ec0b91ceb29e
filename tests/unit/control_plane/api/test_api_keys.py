"""The key rules the gateway and the control plane share."""

from __future__ import annotations

import hashlib

import pytest

from control_plane.api.api_keys import KeyLine, is_tenant_name, key_file_lines

KEY = "sk-a-perfectly-fine-key"
DIGEST = hashlib.sha256(KEY.encode()).digest()


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("team-a", True),
        ("a", True),
        ("0team", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-team", False),
        ("team-", False),
        ("Team", False),
        ("team_a", False),
        ("", False),
    ],
)
def test_tenant_names_are_rfc_1123_labels(name: str, ok: bool) -> None:
    assert is_tenant_name(name) is ok


def test_key_file_lines_name_each_entry_or_its_problem() -> None:
    text = f"# keys\n\n  team-a : {KEY}  \nteam-b\nBAD: {KEY}\nc: tiny\nd:\n"
    assert list(key_file_lines(text)) == [
        KeyLine(3, "team-a", DIGEST),
        KeyLine(4, problem="expected `tenant: key`"),
        KeyLine(5, problem="'BAD' is not a tenant name"),
        KeyLine(6, problem="a key must have at least 8 characters"),
        KeyLine(7, problem="expected `tenant: key`"),
    ]


def test_a_problem_never_repeats_the_key() -> None:
    secret = "sha256:not-hex-but-secret-material-0000000000000000000000000000000"
    (line,) = key_file_lines(f"team-a: {secret}")
    assert line.problem is not None
    assert "secret-material" not in line.problem
