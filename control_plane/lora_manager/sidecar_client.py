"""The control plane's client of the inference sidecar's adapter API (design.md section 2).

- `GET /adapters` -> `{"items": [{"name", "phase", "source", "sha256"?, "reason"?, "message"?}]}`
- `PUT /adapters/{name}` with `{"source", "sha256", "tenant"?, "credentials"?}` -> 200
  loaded / 202 accepted, loading (`credentials`: the keys of the adapter's Secret)
- `DELETE /adapters/{name}` -> 200, or 404 (already gone: success)

Errors are split on purpose: `SidecarUnreachableError` (connection refused, timeout, 5xx: try
again later) and `SidecarRefusedError` (4xx, or 502 when the adapter's source failed: the
sidecar looked at the adapter and said no; bounded retries, then `Failed`).

With a tracer (tracing on, `control_plane/telemetry.py`), each load is a client span
(`adapter.load`: adapter, pod, source scheme, outcome) whose `traceparent` the PUT
carries, so that the sidecar's fetch and load spans are its children.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from control_plane.api.tracing import safe_source, source_scheme
from control_plane.lora_manager.placement import SidecarAdapter, SidecarPhase
from control_plane.telemetry import traceparent_of


class SidecarUnreachableError(Exception):
    """The sidecar did not answer, or failed (5xx): a temporary condition."""


class SidecarRefusedError(Exception):
    """The sidecar refused the adapter (4xx)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _parse_adapter(doc: Any) -> SidecarAdapter | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    try:
        phase = SidecarPhase(doc.get("phase", ""))
    except ValueError:
        phase = SidecarPhase.LOADING
    sha = doc.get("sha256")
    reason = doc.get("reason")
    message = doc.get("message")
    return SidecarAdapter(
        name=doc["name"],
        phase=phase,
        source=str(doc.get("source", "")),
        sha256=sha if isinstance(sha, str) else None,
        reason=reason if isinstance(reason, str) else None,
        message=message if isinstance(message, str) else None,
    )


def _error_of(body: bytes, status: int) -> tuple[str, str]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP{status}", body.decode(errors="replace")[:300] or f"HTTP {status}"
    error = doc.get("error", doc) if isinstance(doc, dict) else {}
    if not isinstance(error, dict):
        return f"HTTP{status}", str(error)[:300]
    reason = error.get("reason") or error.get("code") or f"HTTP{status}"
    return str(reason), str(error.get("message", ""))[:300] or f"HTTP {status}"


def _source_failed(status: int, body: bytes) -> bool:
    """A 502 with the sidecar's own error: the adapter's source failed (e.g. a download
    answered 404), not the sidecar; it counts toward the adapter's bounded retries."""
    return status == 502 and not _error_of(body, status)[0].startswith("HTTP")


class SidecarClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_seconds: float = 60.0,
        tracer: Tracer | None = None,
    ) -> None:
        self._http = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._tracer = tracer

    async def _call(
        self, method: str, url: str, body: dict[str, Any] | None = None, span: Span | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if span is not None:
            headers["traceparent"] = traceparent_of(span)
        try:
            async with self._http.request(
                method,
                url,
                data=orjson.dumps(body) if body is not None else None,
                headers=headers,
                timeout=self._timeout,
            ) as resp:
                payload = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SidecarUnreachableError(f"{method} {url}: {exc or type(exc).__name__}") from exc
        if resp.status >= 500 and not _source_failed(resp.status, payload):
            reason, message = _error_of(payload, resp.status)
            raise SidecarUnreachableError(f"{method} {url}: HTTP {resp.status} {reason}: {message}")
        return resp.status, payload

    async def adapters(self, base_url: str) -> dict[str, SidecarAdapter]:
        """What the sidecar holds, by name."""
        status, body = await self._call("GET", f"{base_url}/adapters")
        if status != 200:
            raise SidecarUnreachableError(f"GET {base_url}/adapters: HTTP {status}")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SidecarUnreachableError(f"GET {base_url}/adapters: not JSON") from exc
        items = doc.get("items", []) if isinstance(doc, dict) else doc
        out: dict[str, SidecarAdapter] = {}
        for item in items if isinstance(items, list) else []:
            parsed = _parse_adapter(item)
            if parsed is not None:
                out[parsed.name] = parsed
        return out

    async def load(
        self,
        base_url: str,
        name: str,
        source: str,
        sha256: str | None,
        tenant: str | None = None,
        *,
        credentials: Mapping[str, str] | None = None,
    ) -> SidecarAdapter:
        """Ask the sidecar to hold `name` (for `tenant`: the sidecar checks the source against
        that tenant's roots; with `credentials` from the adapter's Secret for the fetch);
        its report (Loaded, or Loading when accepted)."""
        payload: dict[str, Any] = {"source": source, "sha256": sha256}
        if tenant is not None:
            payload["tenant"] = tenant
        if credentials:
            payload["credentials"] = dict(credentials)
        if self._tracer is None:
            return await self._load(base_url, name, payload, None)
        attributes = {
            "hoist.adapter": name,
            "hoist.adapter.source_scheme": source_scheme(source),
            "hoist.adapter.source": safe_source(source),
            "server.address": base_url,
        }
        with self._tracer.start_as_current_span(
            "adapter.load",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,  # messages may quote the source
            set_status_on_exception=False,
        ) as span:
            try:
                adapter = await self._load(base_url, name, payload, span)
            except (SidecarRefusedError, SidecarUnreachableError) as exc:
                outcome = exc.reason if isinstance(exc, SidecarRefusedError) else "Unreachable"
                span.set_attribute("hoist.outcome", outcome)
                span.set_status(Status(StatusCode.ERROR, outcome))
                raise
            span.set_attribute("hoist.outcome", adapter.phase.value)
            return adapter

    async def _load(
        self, base_url: str, name: str, payload: dict[str, Any], span: Span | None
    ) -> SidecarAdapter:
        source, sha256 = payload["source"] or "", payload["sha256"]
        status, body = await self._call("PUT", f"{base_url}/adapters/{name}", payload, span)
        if status >= 400:
            raise SidecarRefusedError(*_error_of(body, status))
        try:
            parsed = _parse_adapter(orjson.loads(body))
        except orjson.JSONDecodeError:
            parsed = None
        phase = SidecarPhase.LOADED if status == 200 else SidecarPhase.LOADING
        if parsed is None:
            return SidecarAdapter(name, phase, source, sha256)
        return parsed

    async def unload(self, base_url: str, name: str) -> None:
        """Make sure the sidecar no longer holds `name` (404 counts as done)."""
        status, body = await self._call("DELETE", f"{base_url}/adapters/{name}")
        if status >= 400 and status != 404:
            raise SidecarRefusedError(*_error_of(body, status))
