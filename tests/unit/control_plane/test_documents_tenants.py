"""Tenant documents in `hoist up -f` declarations."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from control_plane.documents import (
    Declarations,
    DocumentsError,
    check_tenant_keys,
    parse_sources,
    tenant_key_problems,
)

TENANT = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec:
  allowedModels: [llama-*]
  quotas: {requestsPerMinute: 60, tokensPerMinute: 10000, concurrentRequests: 4}
  weight: 2
  apiKeysSecret: {name: team-a-keys}
"""


def test_tenants_are_declarations() -> None:
    found = parse_sources([("t.yaml", TENANT)])
    assert [t.metadata.name for t in found.tenants] == ["team-a"]
    tenant = found.tenants[0]
    assert tenant.spec.quotas.tokens_per_minute == 10000
    assert tenant.spec.api_keys_secret is not None
    assert tenant.spec.api_keys_secret.name == "team-a-keys"
    assert found.files[("Tenant", "team-a")] == "t.yaml"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{apiKeys: [sk-inline]}", "spec.apiKeys: unknown field"),
        ("{weight: 0}", "spec.weight: Input should be greater than or equal to 1"),
        (
            "{quotas: {requestsPerMinute: 0}}",
            "spec.quotas.requestsPerMinute: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_tenants_are_refused_precisely(spec: str, expected: str) -> None:
    text = f"apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {spec}\n"
    with pytest.raises(DocumentsError) as caught:
        parse_sources([("t.yaml", text)])
    assert str(caught.value) == f't.yaml: document 1 (Tenant "t"): {expected}'


MODELS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Model
metadata: {name: llama}
spec: {source: /m, engine: sim}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Model
metadata: {name: b-private}
spec: {source: /m, engine: sim, tenant: team-b}
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "{allowedModels: [llama, gpt-4]}",
            'spec.allowedModels[1]: no Model or LoraAdapter named "gpt-4"',
        ),
        (
            "{allowedModels: [b-private]}",
            'spec.allowedModels[0]: "b-private" is dedicated to Tenant "team-b"; '
            "no other tenant may use it",
        ),
        (
            "{quotas: {requestsPerMinute: 100, tokensPerMinute: 50}}",
            "spec.quotas.tokensPerMinute: 50 is below requestsPerMinute (100): every request "
            "counts at least one token, so requestsPerMinute could never be reached",
        ),
    ],
)
def test_tenants_are_checked_against_the_declarations(spec: str, expected: str) -> None:
    text = f"apiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {spec}\n"
    with pytest.raises(DocumentsError) as caught:
        parse_sources([("m.yaml", MODELS), ("t.yaml", text)])
    assert str(caught.value) == f't.yaml: document 1 (Tenant "t"): {expected}'


def test_allowed_globs_and_declared_ids_pass() -> None:
    text = TENANT.replace("[llama-*]", "[llama, llama-*, not-yet-*]")
    found = parse_sources([("m.yaml", MODELS), ("t.yaml", text)])
    assert found.positions[("Tenant", "team-a")] == 1
    assert found.positions[("Model", "b-private")] == 2


KEY_A = "sk-team-a-0123456789"


def declarations() -> Declarations:
    second = TENANT.replace("team-a", "team-b")
    return parse_sources([("t.yaml", TENANT + "---\n" + second)])


def test_key_file_with_a_key_per_tenant_passes() -> None:
    digest = hashlib.sha256(b"sk-team-b-key").hexdigest()
    keys = f"# keys\nteam-a: {KEY_A}\nteam-b: sha256:{digest}\n"
    assert tenant_key_problems(declarations(), ("keys.txt", keys)) == []


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param(
            None,
            [
                't.yaml: document 1 (Tenant "team-a"): no API key: set '
                "HOIST_GATEWAY_TENANT_KEYS_FILE to a file of `team-a: <key>` lines",
                't.yaml: document 2 (Tenant "team-b"): no API key: set '
                "HOIST_GATEWAY_TENANT_KEYS_FILE to a file of `team-b: <key>` lines",
            ],
            id="no-key-file",
        ),
        pytest.param(
            f"team-a: {KEY_A}\n",
            [
                't.yaml: document 2 (Tenant "team-b"): no API key: add a `team-b: <key>` '
                "line to keys.txt"
            ],
            id="a-tenant-without-a-key",
        ),
        pytest.param(
            f"team-a: {KEY_A}\nteam-b: {KEY_A}\n",
            [
                'keys.txt: line 2 is the same key as line 1 of Tenant "team-a"',
                'keys.txt: line 1 is the same key as line 2 of Tenant "team-b"',
            ],
            id="one-key-for-two-tenants",
        ),
        pytest.param(
            f"team-a: {KEY_A}\nteam-b: short\nteam-c: sk-team-c-key\njunk\n",
            [
                "keys.txt: line 2: a key must have at least 8 characters",
                "keys.txt: line 4: expected `tenant: key`",
                'keys.txt: line 3: no Tenant named "team-c" is declared',
                't.yaml: document 2 (Tenant "team-b"): no API key: add a `team-b: <key>` '
                "line to keys.txt",
            ],
            id="bad-lines-and-an-undeclared-tenant",
        ),
    ],
)
def test_key_file_problems(keys: str | None, expected: list[str]) -> None:
    key_file = ("keys.txt", keys) if keys is not None else None
    problems = tenant_key_problems(declarations(), key_file)
    assert sorted(map(str, problems)) == sorted(expected)
    assert KEY_A not in " ".join(map(str, problems))


def test_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentsError) as caught:
        check_tenant_keys(declarations(), tmp_path / "missing.txt")
    assert str(caught.value) == (
        f"{tmp_path / 'missing.txt'}: cannot read the key file "
        "(HOIST_GATEWAY_TENANT_KEYS_FILE): No such file or directory"
    )
