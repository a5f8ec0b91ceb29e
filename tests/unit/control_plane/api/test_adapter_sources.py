"""The adapter source policy: schemes, hosts, addresses and local roots (pure).

Addresses are classified from literals only: nothing here resolves or connects.
"""

from __future__ import annotations

from pathlib import PurePosixPath as P

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.api.adapter_sources import (
    AdapterSourcePolicy,
    AddressClass,
    LocalPath,
    RemoteUrl,
    S3Object,
    SourceRefusedError,
    SourceScheme,
    check_addresses,
    check_source,
    check_url,
    classify,
    host_allowed,
)

DEFAULT = AdapterSourcePolicy()
ROOTED = AdapterSourcePolicy(local_roots=["/models", "/tenants/{tenant}"])
INSTALL = P("/var/hoist/adapters")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        pytest.param("8.8.8.8", AddressClass.PUBLIC, id="v4-public"),
        pytest.param("2606:4700::1111", AddressClass.PUBLIC, id="v6-public"),
        pytest.param("127.0.0.1", AddressClass.LOOPBACK, id="v4-loopback"),
        pytest.param("127.255.0.9", AddressClass.LOOPBACK, id="v4-loopback-range"),
        pytest.param("::1", AddressClass.LOOPBACK, id="v6-loopback"),
        pytest.param("::ffff:127.0.0.1", AddressClass.LOOPBACK, id="v4-mapped-loopback"),
        pytest.param("::ffff:10.1.2.3", AddressClass.PRIVATE, id="v4-mapped-private"),
        pytest.param("2002:7f00:1::", AddressClass.LOOPBACK, id="6to4-loopback"),
        pytest.param("64:ff9b::a9fe:a9fe", AddressClass.LINK_LOCAL, id="nat64-metadata"),
        pytest.param("10.0.0.1", AddressClass.PRIVATE, id="rfc1918-10"),
        pytest.param("172.16.5.4", AddressClass.PRIVATE, id="rfc1918-172"),
        pytest.param("192.168.1.1", AddressClass.PRIVATE, id="rfc1918-192"),
        pytest.param("fd00::1", AddressClass.PRIVATE, id="v6-unique-local"),
        pytest.param("169.254.169.254", AddressClass.LINK_LOCAL, id="cloud-metadata"),
        pytest.param("fe80::1", AddressClass.LINK_LOCAL, id="v6-link-local"),
        pytest.param("224.0.0.1", AddressClass.MULTICAST, id="v4-multicast"),
        pytest.param("ff02::1", AddressClass.MULTICAST, id="v6-multicast"),
        pytest.param("0.0.0.0", AddressClass.UNSPECIFIED, id="v4-unspecified"),
        pytest.param("::", AddressClass.UNSPECIFIED, id="v6-unspecified"),
        pytest.param("100.64.0.1", AddressClass.RESERVED, id="carrier-grade-nat"),
        pytest.param("240.0.0.1", AddressClass.PRIVATE, id="v4-reserved-class-e"),
    ],
)
def test_addresses_are_classified_from_literals(address: str, kind: AddressClass) -> None:
    assert classify(address) is kind


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_ipv6_form_classify_alike(ip: object) -> None:
    assert classify(f"::ffff:{ip}") is classify(str(ip))


@pytest.mark.parametrize(
    ("source", "checked"),
    [
        pytest.param("s3://bucket/a/b.tar", S3Object("bucket", "a/b.tar"), id="s3"),
        pytest.param(
            "https://models.example.com/a.tar",
            RemoteUrl(SourceScheme.HTTPS, "models.example.com", "https://models.example.com/a.tar"),
            id="https-name",
        ),
        pytest.param("/models/sql-lora", LocalPath(P("/models/sql-lora")), id="under-root"),
        pytest.param("file:///models/x.tar", LocalPath(P("/models/x.tar")), id="file-uri"),
    ],
)
def test_allowed_sources(source: str, checked: object) -> None:
    assert check_source(source, ROOTED) == checked


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        pytest.param("http://models.example.com/a.tar", "SchemeNotAllowed", id="http-off"),
        pytest.param("ftp://host/a", "SchemeNotAllowed", id="ftp"),
        pytest.param("https://127.0.0.1:8079/v1/state", "AddressNotAllowed", id="loopback-ip"),
        pytest.param("https://[::1]/a", "AddressNotAllowed", id="loopback-v6"),
        pytest.param("https://169.254.169.254/latest", "AddressNotAllowed", id="metadata"),
        pytest.param("https://10.0.0.7/a.tar", "AddressNotAllowed", id="private-ip"),
        pytest.param("https://user:pw@example.com/a", "InvalidSource", id="credentials"),
        pytest.param("https:///a", "InvalidSource", id="no-host"),
        pytest.param("https://example.com:99999/a", "InvalidSource", id="bad-port"),
        pytest.param("/etc", "PathNotAllowed", id="outside-roots"),
        pytest.param("/modelsx/a", "PathNotAllowed", id="sibling-prefix"),
        pytest.param("/models/../etc", "InvalidSource", id="dotdot"),
        pytest.param("models/a", "InvalidSource", id="relative"),
        pytest.param("file://remote/models/a", "InvalidSource", id="file-remote-host"),
        pytest.param("s3://bucket", "InvalidSource", id="s3-no-key"),
        pytest.param("", "InvalidSource", id="empty"),
        pytest.param("/models/a\x00", "InvalidSource", id="nul"),
    ],
)
def test_refused_sources(source: str, reason: str) -> None:
    with pytest.raises(SourceRefusedError) as refused:
        check_source(source, ROOTED)
    assert refused.value.reason == reason


def test_by_default_no_local_path_is_allowed() -> None:
    with pytest.raises(SourceRefusedError, match="outside the directories"):
        check_source("/models/a", DEFAULT)


def test_the_install_directory_is_refused_even_inside_a_root() -> None:
    policy = AdapterSourcePolicy(local_roots=["/var/hoist"])
    assert check_source("/var/hoist/sources/a", policy, forbidden=[INSTALL])
    for source in ("/var/hoist/adapters/team-b/sql-lora/0123", "/var/hoist/adapters", "/var"):
        with pytest.raises(SourceRefusedError) as refused:
            check_source(source, AdapterSourcePolicy(local_roots=["/"]), forbidden=[INSTALL])
        assert refused.value.reason == "PathNotAllowed", source


def test_a_tenant_root_is_the_tenants_own_prefix() -> None:
    assert check_source("/tenants/team-a/x", ROOTED, tenant="team-a")
    with pytest.raises(SourceRefusedError):
        check_source("/tenants/team-b/x", ROOTED, tenant="team-a")
    with pytest.raises(SourceRefusedError):  # not a tenant: `{tenant}` roots do not apply
        check_source("/tenants/team-a/x", ROOTED)


def test_allowed_hosts_restrict_names_and_trust_their_addresses() -> None:
    policy = AdapterSourcePolicy(
        schemes=[SourceScheme.HTTP], allowed_hosts=["127.0.0.1", "*.internal", "10.0.0.0/8"]
    )
    assert check_url("http://127.0.0.1:9000/a.tar", policy).host == "127.0.0.1"
    assert check_url("http://10.1.2.3/a.tar", policy).host == "10.1.2.3"
    check_addresses("models.internal", ["10.9.9.9"], policy)  # trusted by the operator
    with pytest.raises(SourceRefusedError, match="not allowed") as refused:
        check_url("http://example.com/a.tar", policy)
    assert refused.value.reason == "HostNotAllowed"
    with pytest.raises(SourceRefusedError):  # "*.internal" is below the suffix only
        check_url("http://evilinternal/a.tar", policy)


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        pytest.param(["93.184.216.34"], None, id="public"),
        pytest.param(["93.184.216.34", "127.0.0.1"], "AddressNotAllowed", id="one-loopback"),
        pytest.param(["::ffff:192.168.0.1"], "AddressNotAllowed", id="mapped-private"),
        pytest.param([], "HostNotResolved", id="none"),
    ],
)
def test_a_name_is_judged_by_every_address_it_resolves_to(
    addresses: list[str], reason: str | None
) -> None:
    if reason is None:
        check_addresses("example.com", addresses, DEFAULT)
        return
    with pytest.raises(SourceRefusedError) as refused:
        check_addresses("example.com", addresses, DEFAULT)
    assert refused.value.reason == reason
    assert "127.0.0.1" not in refused.value.message  # policy terms, not the address


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("a.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("A.Example.COM.", ["a.example.com"], True),
        ("::1", ["[::1]"], True),
        ("10.0.0.1", ["*.0.0.1"], False),
        ("10.0.0.1", ["not-a-network/99"], False),
    ],
)
def test_host_patterns(host: str, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


def test_the_policy_is_a_camel_case_resource_field() -> None:
    policy = AdapterSourcePolicy.model_validate(
        {"schemes": ["https"], "allowedHosts": ["h"], "localRoots": ["/r"]}
    )
    assert policy.model_dump(by_alias=True, mode="json") == {
        "schemes": ["https"],
        "allowedHosts": ["h"],
        "localRoots": ["/r"],
    }
