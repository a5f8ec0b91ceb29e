"""The checks that decide whether a Tenant is usable; problems never hold a key."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.api import Tenant
from control_plane.tenant_manager.validation import (
    MAX_LISTED_MODELS,
    Catalog,
    KeyFormatError,
    KeySet,
    TenantReason,
    check_tenant,
    duplicate_keys,
    key_digest,
    kube_keys,
    parse_key_file,
    quota_problems,
    resolve_models,
    secret_keys,
)
from data_plane.gateway.tenancy import keys as gateway_keys

KEY = "sk-a-perfectly-fine-key"
DIGEST = hashlib.sha256(KEY.encode()).digest()


def tenant(name: str = "team-a", **spec: Any) -> Tenant:
    return Tenant.model_validate(
        {"apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Tenant",
         "metadata": {"name": name}, "spec": spec}
    )  # fmt: skip


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(KEY, DIGEST, id="plaintext"),
        pytest.param(f"  {KEY}\n", DIGEST, id="surrounding-space"),
        pytest.param(f"sha256:{DIGEST.hex()}", DIGEST, id="digest"),
        pytest.param(f"sha256:{DIGEST.hex().upper()}", DIGEST, id="digest-upper-case"),
    ],
)
def test_key_digest(entry: str, expected: bytes) -> None:
    assert key_digest(entry) == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param("short", "at least 8 characters", id="too-short"),
        pytest.param("sha256:abc", "64 hex digits", id="digest-too-short"),
        pytest.param("sha256:" + "g" * 64, "64 hex digits", id="digest-not-hex"),
    ],
)
def test_malformed_key_entries(entry: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as caught:
        key_digest(entry)
    assert entry.removeprefix("sha256:") not in str(caught.value)


@given(st.text(max_size=80))
def test_key_rules_agree_with_the_gateway(entry: str) -> None:
    try:
        ours: bytes | None = key_digest(entry)
    except KeyFormatError:
        ours = None
    try:
        theirs: bytes | None = gateway_keys.parse_key_entry(entry)
    except gateway_keys.KeyFileError:
        theirs = None
    assert ours == theirs


line = st.one_of(
    st.just(""),
    st.just("# comment"),
    st.builds(lambda t, k: f"{t}: {k}", st.sampled_from(["a", "b", "Bad!", ""]),
              st.sampled_from([KEY, "sk-other-key-1", "short", f"sha256:{DIGEST.hex()}", ""])),
    st.text(max_size=20),
)  # fmt: skip


@given(st.lists(line, max_size=6))
def test_key_files_the_gateway_refuses_are_reported(lines: list[str]) -> None:
    text = "\n".join(lines)
    parsed = parse_key_file(text)
    reported = bool(parsed.line_problems) or bool(duplicate_keys(parsed.tenants))
    try:
        ring = gateway_keys.parse_key_file(text)
    except gateway_keys.KeyFileError:
        assert reported
        return
    assert not reported
    ours = sorted((d, t) for t, ks in parsed.tenants.items() for _, d in ks.digests)
    assert ours == sorted(ring.entries)


def test_key_file_lines() -> None:
    parsed = parse_key_file(
        f"# keys\n\nteam-a: {KEY}\nteam-b: sha256:{DIGEST.hex()}\nnope\nBAD: {KEY}x\nc: tiny\n"
    )
    assert parsed.tenants["team-a"].digests == (("line 3", DIGEST),)
    assert parsed.tenants["team-b"].digests == (("line 4", DIGEST),)
    assert parsed.line_problems == (
        (5, "expected `tenant: key`"),
        (6, "'BAD' is not a tenant name"),
        (7, "a key must have at least 8 characters"),
    )


def test_secret_entries_become_digests_and_bad_ones_are_named() -> None:
    not_utf8 = base64.b64encode(b"\xff\xfe").decode()
    found = secret_keys(
        {"data": {"ci": b64(KEY), "short": b64("tiny"), "junk": "%%%", "bin": not_utf8}},
        secret_name="s",
    )
    assert found.digests == (('entry "ci"', DIGEST),)
    assert [(p.reason, p.field) for p in found.problems] == [
        (TenantReason.INVALID_KEY, "spec.apiKeysSecret.name")
    ] * 3
    messages = [p.message for p in found.problems]
    assert messages == [
        'Secret "s": entry "bin" is not base64-encoded UTF-8',
        'Secret "s": entry "junk" is not base64-encoded UTF-8',
        'Secret "s": entry "short" is not a valid key: a key must have at least 8 characters',
    ]


@pytest.mark.parametrize(
    ("spec", "secrets", "reason", "field"),
    [
        pytest.param({}, {}, TenantReason.NO_KEYS, "spec.apiKeysSecret", id="no-secret-named"),
        pytest.param({"apiKeysSecret": {"name": "k"}}, {}, TenantReason.SECRET_NOT_FOUND,
                     "spec.apiKeysSecret.name", id="secret-missing"),
        pytest.param({"apiKeysSecret": {"name": "k"}}, {"k": {"data": {}}},
                     TenantReason.NO_KEYS, "spec.apiKeysSecret.name", id="secret-empty"),
        pytest.param({"apiKeysSecret": {"name": "k"}}, {"k": {}}, TenantReason.NO_KEYS,
                     "spec.apiKeysSecret.name", id="secret-without-data"),
    ],
)  # fmt: skip
def test_kube_keys_problems(
    spec: dict[str, Any], secrets: dict[str, Any], reason: TenantReason, field: str
) -> None:
    found = kube_keys(tenant(**spec), secrets)
    assert found.digests == ()
    assert [(p.reason, p.field) for p in found.problems] == [(reason, field)]


def test_a_secret_the_operator_may_not_read_says_so() -> None:
    found = kube_keys(tenant(apiKeysSecret={"name": "k"}), {}, frozenset({"k"}))
    assert [(p.reason, p.field) for p in found.problems] == [
        (TenantReason.SECRET_FORBIDDEN, "spec.apiKeysSecret.name")
    ]
    assert "RBAC" in found.problems[0].message


def test_duplicates_within_and_across_tenants_are_told_to_each_holder() -> None:
    other = hashlib.sha256(b"sk-only-b-has-it").digest()
    dups = duplicate_keys(
        {
            "a": KeySet((('entry "ci"', DIGEST),)),
            "b": KeySet((('entry "x"', DIGEST), ('entry "y"', other), ('entry "z"', other))),
            "c": KeySet((('entry "solo"', hashlib.sha256(b"sk-c-only-key").digest()),)),
        }
    )
    assert sorted(dups) == ["a", "b"]
    assert [p.message for p in dups["a"]] == [
        'entry "ci" is the same key as entry "x" of Tenant "b"'
    ]
    assert sorted(p.message for p in dups["b"]) == [
        'entry "x" is the same key as entry "ci" of Tenant "a"',
        'entry "y" is the same key as entry "z"',
        'entry "z" is the same key as entry "y"',
    ]
    assert all(p.reason is TenantReason.DUPLICATE_KEY for ps in dups.values() for p in ps)


@pytest.mark.parametrize(
    ("quotas", "problem_fields"),
    [
        pytest.param({}, [], id="unlimited"),
        pytest.param({"requestsPerMinute": 10, "tokensPerMinute": 10}, [], id="equal"),
        pytest.param({"requestsPerMinute": 10}, [], id="requests-only"),
        pytest.param({"tokensPerMinute": 1}, [], id="tokens-only"),
        pytest.param({"requestsPerMinute": 10, "tokensPerMinute": 9},
                     ["spec.quotas.tokensPerMinute"], id="tokens-below-requests"),
    ],
)  # fmt: skip
def test_quota_problems(quotas: dict[str, int], problem_fields: list[str]) -> None:
    found = quota_problems(tenant(quotas=quotas).spec)
    assert [p.field for p in found] == problem_fields
    assert all(p.reason is TenantReason.INVALID_QUOTA for p in found)


CATALOG = Catalog.of(
    [("llama", None), ("llama-sql", None), ("mistral", None), ("a-own", "team-a"),
     ("b-own", "team-b")]
)  # fmt: skip


@pytest.mark.parametrize(
    ("allowed", "usable", "problems"),
    [
        pytest.param(["*"], ["a-own", "llama", "llama-sql", "mistral"], [], id="everything"),
        pytest.param(["llama-*"], ["a-own", "llama-sql"], [], id="glob"),
        pytest.param(["nothing-yet-*"], ["a-own"], [], id="glob-matching-nothing-is-fine"),
        pytest.param([], ["a-own"], [], id="only-its-own"),
        pytest.param(["llama", "gpt-4"], ["a-own", "llama"],
                     [("spec.allowedModels[1]", 'no Model or LoraAdapter named "gpt-4"')],
                     id="unknown-exact-id"),
        pytest.param(["b-own"], ["a-own"],
                     [("spec.allowedModels[0]",
                       '"b-own" is dedicated to Tenant "team-b"; no other tenant may use it')],
                     id="another-tenants-model"),
        pytest.param(["b-*"], ["a-own"], [], id="globs-never-reach-another-tenants-model"),
        pytest.param(["a-own"], ["a-own"], [], id="naming-its-own"),
    ],
)  # fmt: skip
def test_resolve_models(
    allowed: list[str], usable: list[str], problems: list[tuple[str, str]]
) -> None:
    got, found = resolve_models(tenant(allowedModels=allowed), CATALOG)
    assert got == usable
    assert [(p.field, p.message) for p in found] == problems
    assert all(p.reason is TenantReason.UNKNOWN_MODEL for p in found)


def test_check_tenant_orders_problems_spec_then_keys_then_models() -> None:
    t = tenant(allowedModels=["gone"], quotas={"requestsPerMinute": 5, "tokensPerMinute": 1})
    dup = duplicate_keys({"team-a": KeySet((("x", DIGEST),)), "b": KeySet((("y", DIGEST),))})
    report = check_tenant(t, KeySet((("x", DIGEST),)), CATALOG, duplicates=dup["team-a"])
    assert [p.reason for p in report.problems] == [
        TenantReason.INVALID_QUOTA,
        TenantReason.DUPLICATE_KEY,
        TenantReason.UNKNOWN_MODEL,
    ]
    assert report.spec_invalid and not report.ready
    assert report.keys == 1


def test_check_tenant_ready_counts_distinct_keys_and_caps_the_model_list() -> None:
    many = Catalog.of((f"m-{i:03}", None) for i in range(MAX_LISTED_MODELS + 5))
    keys = KeySet((("a", DIGEST), ("b", DIGEST), ("c", hashlib.sha256(b"sk-second-key").digest())))
    report = check_tenant(tenant(), keys, many)
    assert report.ready and not report.spec_invalid
    assert report.keys == 2
    assert len(report.allowed_models) == MAX_LISTED_MODELS
    assert report.allowed_models[0] == "m-000"


def test_no_keys_at_all_is_a_problem() -> None:
    report = check_tenant(tenant(), KeySet(), CATALOG)
    assert [p.reason for p in report.problems] == [TenantReason.NO_KEYS]


HEX = st.text(alphabet="0123456789abcdef", min_size=4, max_size=70)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.one_of(HEX.map(lambda h: f"sk-{h}"), HEX.map(lambda h: f"sha256:{h}")),
        max_size=5,
    )
)
def test_no_problem_ever_repeats_a_key(entries: dict[str, str]) -> None:
    data = {name: b64(value) for name, value in entries.items()}
    secret_sets = {
        "a": secret_keys({"data": data}, secret_name="a-keys"),
        "b": secret_keys({"data": data}, secret_name="b-keys"),
    }
    problems = [p for ks in secret_sets.values() for p in ks.problems]
    problems += [p for ps in duplicate_keys(secret_sets).values() for p in ps]
    assert problems or not entries  # the same entries in two Secrets: always duplicates
    text = " ".join(str(p) for p in problems)
    for value in entries.values():
        assert value.removeprefix("sha256:") not in text


NAMES = st.sampled_from(["llama", "llama-sql", "mistral", "m1", "m2", "x"])
OWNERS = st.sampled_from([None, None, "team-a", "team-b"])
PATTERNS = st.sampled_from(["*", "llama*", "m?", "[lm]*", "llama", "mistral", "gone", "x"])


@given(
    st.lists(st.tuples(NAMES, OWNERS), max_size=8),
    st.lists(PATTERNS, max_size=4),
)
def test_resolved_models_never_leak_another_tenants_own(
    entries: list[tuple[str, str | None]], allowed: list[str]
) -> None:
    catalog = Catalog.of(entries)
    usable, problems = resolve_models(tenant("team-a", allowedModels=allowed), catalog)
    assert usable == sorted(set(usable))
    assert all(catalog.owners[m] in (None, "team-a") for m in usable)
    assert {m for m, owner in catalog.owners.items() if owner == "team-a"} <= set(usable)
    # an exact id is a problem exactly when the tenant may not use it
    flagged = {p.field for p in problems}
    for index, pattern in enumerate(allowed):
        if not any(c in pattern for c in "*?["):
            assert (f"spec.allowedModels[{index}]" in flagged) == (pattern not in usable)
