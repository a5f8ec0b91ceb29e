"""Credentials for an adapter's source, from the Secret its `credentialsSecretRef` names.

The LoRA manager reads the Secret (it may `get` Secrets by name; the inference pods get no
API token at all) and hands the values to the sidecar in the load request, for that fetch
only. The values never enter a log line, an event, the status or an error: refusals name
the Secret and the keys, never what they hold.

A tenant's adapter (`spec.tenant` set) may name only a Secret labelled
`serving.hoist.dev/tenant: <that tenant>`: tenants that share a namespace cannot borrow
each other's store credentials (nor any other Secret) through the LoRA manager.

Only these keys are read (the standard variables' names); others are ignored:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (`s3://`), `HF_TOKEN`
(`hf://`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

from control_plane.api.constants import LABEL_TENANT
from control_plane.kube import KubeClient, KubeError, core_ref

CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN")


class CredentialsError(Exception):
    """The Secret cannot give credentials; `reason` is a CamelCase word, the message safe
    to show in the adapter's status (it names the Secret, never a value)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CredentialsReader(Protocol):
    async def read(self, namespace: str | None, name: str, tenant: str | None) -> dict[str, str]:
        """The credentials in Secret `name` of `namespace` for an adapter of `tenant` (None:
        the operator's); raises CredentialsError."""
        ...


def credentials_of(secret: Mapping[str, Any], name: str, tenant: str | None) -> dict[str, str]:
    """Decode the known keys of a Secret's `data` (pure); raises CredentialsError."""
    if tenant is not None:
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(LABEL_TENANT) != tenant:
            raise CredentialsError(
                "CredentialsNotAllowed",
                f"the Secret {name!r} is not labelled {LABEL_TENANT}={tenant}; a tenant's"
                " adapter may name only that tenant's Secrets",
            )
    data = secret.get("data") or {}
    if not isinstance(data, Mapping):
        data = {}
    found: dict[str, str] = {}
    for key in CREDENTIAL_KEYS:
        encoded = data.get(key)
        if not isinstance(encoded, str):
            continue
        try:
            found[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(
                "CredentialsInvalid", f"the Secret {name!r} holds an undecodable {key}"
            ) from None
    if not found:
        keys = ", ".join(CREDENTIAL_KEYS)
        raise CredentialsError(
            "CredentialsInvalid", f"the Secret {name!r} has none of the keys {keys}"
        )
    if ("AWS_ACCESS_KEY_ID" in found) != ("AWS_SECRET_ACCESS_KEY" in found):
        raise CredentialsError(
            "CredentialsInvalid",
            f"the Secret {name!r} needs both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    return found


class SecretCredentials:
    """Reads the Secret through the API server (Kubernetes)."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def read(self, namespace: str | None, name: str, tenant: str | None) -> dict[str, str]:
        try:
            secret = await self._kube.get(core_ref(namespace or "default", "secrets", name))
        except KubeError as exc:
            if exc.temporary:
                raise
            raise CredentialsError(
                "CredentialsUnreadable", f"the Secret {name!r} could not be read"
            ) from None
        if secret is None:
            raise CredentialsError(
                "CredentialsNotFound", f"no Secret {name!r} in the adapter's namespace"
            )
        return credentials_of(secret, name, tenant)
