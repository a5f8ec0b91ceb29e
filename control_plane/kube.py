"""A small typed Kubernetes API client on aiohttp, for the operators' own calls.

kopf watches and dispatches; the handlers read and write other objects (Deployments,
Services, pods, statuses) through this client, built from the same `kopf.ConnectionInfo`
the operator logs in with. Only what the operators use: get, list, create, merge-patch.

Errors: `KubeNotFoundError` (404), `KubeConflictError` (409), `KubeError` (any other
answer or no answer; `temporary` is true for 5xx, 429 and connection failures).
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import tempfile
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf
import orjson

from control_plane.api.constants import GROUP, VERSION

Json = dict[str, Any]


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def temporary(self) -> bool:
        return self.status in {0, 429} or self.status >= 500


class KubeNotFoundError(KubeError):
    pass


class KubeConflictError(KubeError):
    pass


def core_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{quote(namespace)}/{plural}"
    return f"{path}/{quote(name)}" if name else path


def apps_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/apis/apps/v1/namespaces/{quote(namespace)}/{plural}"
    return f"{path}/{quote(name)}" if name else path


def hoist_path(namespace: str, plural: str, name: str | None = None, sub: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{plural}"
    if name:
        path += f"/{quote(name)}"
    if sub:
        path += f"/{sub}"
    return path


def _material(data: str | bytes | None, path: object) -> str | None:
    """A file path for TLS material given inline (base64) or as a path."""
    if path is not None:
        return str(path)
    if data is None:
        return None
    raw = data if isinstance(data, bytes) else data.encode()
    with contextlib.suppress(ValueError):
        raw = base64.b64decode(raw, validate=True)
    with tempfile.NamedTemporaryFile(delete=False, suffix=".pem") as f:
        f.write(raw)
        return f.name


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    if info.insecure:
        return False
    ctx = ssl.create_default_context(cafile=_material(info.ca_data, info.ca_path))
    cert = _material(info.certificate_data, info.certificate_path)
    if cert:
        ctx.load_cert_chain(cert, _material(info.private_key_data, info.private_key_path))
    return ctx


class KubeClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        info: kopf.ConnectionInfo,
        *,
        timeout_seconds: float = 30.0,
        user_agent: str = "hoist-operator",
    ) -> None:
        self._http = session
        self._server = info.server.rstrip("/")
        self._headers: dict[str, str] = {"User-Agent": user_agent}
        if info.token:
            self._headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        self._ssl = ssl_context(info)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._http.request(
                method,
                self._server + path,
                data=orjson.dumps(body) if body is not None else None,
                params=params,
                headers=headers,
                ssl=self._ssl,
                timeout=self._timeout,
            ) as resp:
                payload = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"{method} {path}: {exc or type(exc).__name__}") from exc
        try:
            doc = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            doc = {"message": payload.decode(errors="replace")[:300]}
        if resp.status < 400:
            return doc if isinstance(doc, dict) else {"items": doc}
        message = f"{method} {path}: {doc.get('message', '') if isinstance(doc, dict) else doc}"
        if resp.status == 404:
            raise KubeNotFoundError(404, message)
        if resp.status == 409:
            raise KubeConflictError(409, message)
        raise KubeError(resp.status, message)

    async def get(self, path: str) -> Json | None:
        try:
            return await self._request("GET", path)
        except KubeNotFoundError:
            return None

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Json]:
        params = {"labelSelector": label_selector} if label_selector else None
        doc = await self._request("GET", path, params=params)
        items = doc.get("items") or []
        return [i for i in items if isinstance(i, dict)]

    async def create(self, path: str, body: Json) -> Json:
        return await self._request("POST", path, body=body)

    async def delete(self, path: str) -> None:
        await self._request("DELETE", path)

    async def merge_patch(self, path: str, body: Json) -> Json:
        return await self._request(
            "PATCH", path, body=body, content_type="application/merge-patch+json"
        )

    async def apply(self, collection: str, body: Json) -> Json:
        """Create `body` in `collection`, or merge-patch the existing object into it."""
        try:
            return await self.create(collection, body)
        except KubeConflictError:
            name = body["metadata"]["name"]
            return await self.merge_patch(f"{collection}/{quote(name)}", body)
