"""How the operators' client reaches the cluster kopf logged in to."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import kopf
from lightkube.config.kubeconfig import KubeConfig, SingleConfig

Json = dict[str, Any]


def kubeconfig_from(info: kopf.ConnectionInfo) -> SingleConfig:
    """lightkube's configuration for the cluster kopf logged in to."""
    cluster: Json = {"server": info.server}
    if info.insecure:
        cluster["insecure-skip-tls-verify"] = True
    if info.ca_path:
        cluster["certificate-authority"] = str(info.ca_path)
    elif info.ca_data:
        cluster["certificate-authority-data"] = _b64(info.ca_data)
    user: Json = {}
    if info.token:
        user["token"] = info.token
    if info.certificate_path:
        user["client-certificate"] = str(info.certificate_path)
    elif info.certificate_data:
        user["client-certificate-data"] = _b64(info.certificate_data)
    if info.private_key_path:
        user["client-key"] = str(info.private_key_path)
    elif info.private_key_data:
        user["client-key-data"] = _b64(info.private_key_data)
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "kopf", "cluster": cluster}],
            "users": [{"name": "kopf", "user": user}],
            "contexts": [
                {
                    "name": "kopf",
                    "context": {
                        "cluster": "kopf",
                        "user": "kopf",
                        "namespace": info.default_namespace or "default",
                    },
                }
            ],
            "current-context": "kopf",
        }
    ).get()
    if config is None or config.user is None:
        raise ValueError("kubeconfig_from: no context")  # cannot happen: one is written above
    return config


def _b64(data: str | bytes) -> str:
    """Inline TLS material as a kubeconfig holds it: base64 (kopf passes it on as given, or
    as PEM when built by hand)."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        return base64.b64encode(raw).decode()
    return raw.decode()


class Identified(httpx2.AsyncBaseTransport):
    """Sends every request with the client's own User-Agent (lightkube sets none), so
    the API server's audit log (and the emulator's RBAC check) can tell who called."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, user_agent: str) -> None:
        self._inner = inner
        self._agent = user_agent

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["User-Agent"] = self._agent
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
