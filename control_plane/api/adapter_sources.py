"""Which adapter sources may be fetched: one policy, checked at three places (pure).

A LoraAdapter's `source` is supplied by whoever writes the resource, a tenant included,
and the sidecar that fetches it sits inside the cluster's network with the engine's
volume mounted. Unchecked, a source is a way to read any file the sidecar can read (another
tenant's installed adapter) and to make requests from inside the network (the loader as a
port scanner). The policy below is what the operator allows; the same functions run in

- the gateway, when a tenant posts an adapter (422 naming `source`);
- the LoRA manager, before it places an adapter (a `SourceAllowed` condition);
- the sidecar, before and while it fetches (defence in depth: it re-resolves symlinks and
  checks the address it actually connects to, so DNS rebinding gains nothing).

Refusals are phrased in policy terms only ("resolves to a private address"), never with
what a remote answered or a network error's text: a tenant learns nothing about the
network from them. Sources configured by the operator itself (e.g. an S3 endpoint in
`AWS_ENDPOINT_URL`) are not tenant-supplied and are not checked here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import Field, StringConstraints

from control_plane.api.common import Strict
from control_plane.api.store_sources import HfRepo, S3Object, StoreUriError, parse_hf, parse_s3

TENANT_PLACEHOLDER = "{tenant}"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SourceScheme(StrEnum):
    S3 = "s3"
    """Objects in the S3 store the operator configures (`AWS_ENDPOINT_URL`)."""
    HF = "hf"
    """Model repositories on the Hub the operator configures (`HF_ENDPOINT`)."""
    HTTPS = "https"
    HTTP = "http"
    """Plain HTTP: off by default (no integrity in transit unless `sha256` is set)."""
    FILE = "file"
    """Local paths and `file://` URIs, under `localRoots` only."""


DEFAULT_SCHEMES = (SourceScheme.S3, SourceScheme.HF, SourceScheme.HTTPS, SourceScheme.FILE)
"""Allowed unless a deployment or a Tenant says otherwise."""

# A host name, `*.suffix` (any name below that suffix), an IP address or a CIDR network.
HostPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9*.:/\[\]-]+$")
]


class AdapterSourcePolicy(Strict):
    """What adapter sources may name (a deployment setting, or a field on a Tenant)."""

    schemes: list[SourceScheme] = Field(default_factory=lambda: list(DEFAULT_SCHEMES))
    """The kinds of source allowed; `file` covers local paths and `file://`."""
    allowed_hosts: list[HostPattern] = Field(default_factory=list)
    """Hosts `http(s)://` sources may name (`models.example.com`, `*.example.com`, an IP or
    a CIDR). Listed hosts are trusted by the operator and may resolve to any address.
    Empty: any host whose every address is public (not loopback, private, link-local,
    multicast or reserved)."""
    local_roots: list[Annotated[str, StringConstraints(min_length=1, max_length=1024)]] = Field(
        default_factory=list
    )
    """Absolute directories local sources must lie in once symlinks are resolved;
    `{tenant}` in a root stands for the tenant's name (its own prefix). Empty: no local
    sources."""


class SourceRefusedError(ValueError):
    """A source the policy does not allow; `reason` is a CamelCase word, the message says
    why in policy terms (safe to show to the tenant who supplied it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AddressClass(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"
    """Shared (carrier-grade NAT), documentation, benchmarking and other special ranges."""


def classify(address: str | IpAddress) -> AddressClass:
    """The class of an IP address; IPv4 inside IPv6 (mapped, 6to4, NAT64) counts as the
    IPv4 address it carries. Raises ValueError for a string that is not an address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_v4(ip) or ip
    if ip.is_unspecified:
        return AddressClass.UNSPECIFIED
    if ip.is_loopback:
        return AddressClass.LOOPBACK
    if ip.is_link_local:
        return AddressClass.LINK_LOCAL
    if ip.is_multicast:
        return AddressClass.MULTICAST
    if ip.is_private:
        return AddressClass.PRIVATE
    if not ip.is_global or ip.is_reserved:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class LocalPath:
    path: PurePosixPath
    """Absolute and normalised (no `.` or `..` parts)."""


@dataclass(frozen=True, slots=True)
class RemoteUrl:
    scheme: SourceScheme
    host: str
    """Lowercase, without brackets (an IPv6 literal is bare)."""
    url: str


CheckedSource = LocalPath | RemoteUrl | S3Object | HfRepo


def check_source(
    source: str,
    policy: AdapterSourcePolicy,
    *,
    tenant: str | None = None,
    forbidden: Iterable[PurePosixPath] = (),
) -> CheckedSource:
    """Check `source` against `policy` for `tenant` (None: not a tenant's). Literal IP
    hosts are classified here; names are resolved by the caller, then `check_addresses`.
    `forbidden` are directories never allowed, whatever the roots say (the adapter install
    directories). Raises SourceRefusedError."""
    if not source or source != source.strip() or "\x00" in source:
        raise SourceRefusedError("InvalidSource", "the source must be a path or URI")
    scheme, sep, _ = source.partition("://")
    if not sep:
        return _local(PurePosixPath(source), policy, tenant, forbidden)
    parts = urlsplit(source)
    try:
        kind = SourceScheme(scheme.lower())
    except ValueError:
        raise SourceRefusedError(
            "SchemeNotAllowed", f"{scheme}:// sources are not supported"
        ) from None
    if kind not in policy.schemes:
        raise SourceRefusedError("SchemeNotAllowed", f"{kind}:// sources are not allowed here")
    if kind is SourceScheme.FILE:
        if parts.netloc not in ("", "localhost"):
            raise SourceRefusedError("InvalidSource", "a file:// URI may not name a host")
        return _local(PurePosixPath(unquote(parts.path)), policy, tenant, forbidden)
    if kind in (SourceScheme.S3, SourceScheme.HF):
        # The object lies in the operator's store: its endpoint is not the tenant's to name.
        try:
            return parse_s3(source) if kind is SourceScheme.S3 else parse_hf(source)
        except StoreUriError as exc:
            raise SourceRefusedError("InvalidSource", str(exc)) from None
    return check_url(source, policy)


def check_url(url: str, policy: AdapterSourcePolicy) -> RemoteUrl:
    """Check an http(s) URL (a source, or where a redirect leads): scheme, host, and the
    host itself when it is an IP literal."""
    parts = urlsplit(url)
    try:
        kind = SourceScheme(parts.scheme.lower())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise SourceRefusedError("InvalidSource", "the source is not a valid URL") from None
    if kind not in (SourceScheme.HTTP, SourceScheme.HTTPS) or kind not in policy.schemes:
        raise SourceRefusedError("SchemeNotAllowed", f"{kind}:// sources are not allowed here")
    if not host:
        raise SourceRefusedError("InvalidSource", "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise SourceRefusedError(
            "InvalidSource", "the URL may not carry credentials; ask the operator to configure them"
        )
    if policy.allowed_hosts:
        if not host_allowed(host, policy.allowed_hosts):
            raise SourceRefusedError("HostNotAllowed", f"the host {host} is not allowed")
    elif is_ip_literal(host):
        check_addresses(host, [host], policy)
    return RemoteUrl(kind, host, url)


def check_addresses(host: str, addresses: Iterable[str], policy: AdapterSourcePolicy) -> None:
    """Refuse `host` unless every address it resolved to is public, or the operator lists
    the host. Call with the addresses actually connected to (DNS rebinding)."""
    if host_allowed(host, policy.allowed_hosts):
        return
    found = list(addresses)
    if not found:
        raise SourceRefusedError("HostNotResolved", f"the host {host} does not resolve")
    for address in found:
        kind = classify(address)
        if kind is not AddressClass.PUBLIC:
            raise SourceRefusedError(
                "AddressNotAllowed", f"the host {host} resolves to a {kind} address"
            )


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    host = host.lower().strip("[]").rstrip(".")
    ip = _ip(host)
    for given in patterns:
        pattern = given.lower().strip("[]").rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and ip is None:
                return True
        elif "/" in pattern:
            try:
                if ip is not None and ip in ipaddress.ip_network(pattern, strict=False):
                    return True
            except ValueError:
                continue
        elif pattern == host or (ip is not None and _ip(pattern) == ip):
            return True
    return False


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip_literal(text: str) -> bool:
    return _ip(text) is not None


def roots_for(policy: AdapterSourcePolicy, tenant: str | None) -> list[PurePosixPath]:
    """The policy's local roots for `tenant`; a `{tenant}` root applies to tenants only."""
    roots = []
    for template in policy.local_roots:
        if TENANT_PLACEHOLDER in template and tenant is None:
            continue
        path = PurePosixPath(template.replace(TENANT_PLACEHOLDER, tenant or ""))
        if path.is_absolute() and ".." not in path.parts:
            roots.append(path)
    return roots


def _local(
    path: PurePosixPath,
    policy: AdapterSourcePolicy,
    tenant: str | None,
    forbidden: Iterable[PurePosixPath],
) -> LocalPath:
    if SourceScheme.FILE not in policy.schemes:
        raise SourceRefusedError("SchemeNotAllowed", "local sources are not allowed here")
    if ".." in path.parts:
        raise SourceRefusedError("InvalidSource", "a local source may not contain '..'")
    if not path.is_absolute():
        raise SourceRefusedError("InvalidSource", "a local source must be an absolute path")
    check_local_path(path, policy, tenant=tenant, forbidden=forbidden)
    return LocalPath(path)


def check_local_path(
    path: PurePosixPath,
    policy: AdapterSourcePolicy,
    *,
    tenant: str | None,
    forbidden: Iterable[PurePosixPath] = (),
) -> None:
    """Refuse an absolute `path` (resolve symlinks first where the files are) outside every
    root of `policy`, or inside a forbidden directory."""
    if any(within(path, f) or within(f, path) for f in forbidden):
        raise SourceRefusedError(
            "PathNotAllowed", "the source lies in the adapter install directory"
        )
    if not any(within(path, root) for root in roots_for(policy, tenant)):
        raise SourceRefusedError(
            "PathNotAllowed", "the source lies outside the directories allowed for adapters"
        )


def within(path: PurePosixPath, root: PurePosixPath) -> bool:
    """Whether `path` is `root` or lies inside it (both absolute, both resolved)."""
    return path == root or root in path.parents
