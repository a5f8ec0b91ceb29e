"""Spans of the sidecar's adapter work: each fetch and each load into the engine.

With tracing on (`data_plane.telemetry`, the `OTEL_*` variables) the adapter API's
`PUT /adapters/{name}` gets a server span joined to the caller's `traceparent` (the
operator's, on Kubernetes), and within it one span per fetch (`adapter.fetch`) and per
load (`adapter.load`); re-loads after an engine restart get a load span of their own.
Attributes: `hoist.adapter`, `hoist.adapter.source_scheme`, `hoist.adapter.source` (no
credentials, query or fragment: `control_plane.api.tracing.safe_source`), `hoist.adapter.bytes`
(fetched), `hoist.outcome` (`ok` or the refusal's reason). Exception messages are not
recorded: they may quote a source. With tracing off, every step is the no-op `_Step`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from control_plane.api.tracing import safe_source, source_scheme
from data_plane.inference.sidecar_runtime.engine_client import (
    EngineRefusedError,
    EngineUnavailableError,
)
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError
from data_plane.telemetry import extract_context


class _Step:
    """What a traced step may add on its way (nothing, untraced)."""

    __slots__ = ("_span",)

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def fetched(self, size: int) -> None:
        if self._span is not None:
            self._span.set_attribute("hoist.adapter.bytes", size)


_UNTRACED = _Step(None)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AdapterRefusedError):
        return exc.reason
    if isinstance(exc, EngineRefusedError):
        return "EngineRefused"
    if isinstance(exc, EngineUnavailableError):
        return "EngineUnavailable"
    return type(exc).__name__


class AdapterSpans:
    def __init__(self, tracer: Tracer | None) -> None:
        self._tracer = tracer

    @contextmanager
    def _span(
        self, name: str, attributes: dict[str, str], *, headers: Mapping[str, str] | None = None
    ) -> Iterator[_Step]:
        if self._tracer is None:
            yield _UNTRACED
            return
        kind = SpanKind.INTERNAL
        context = None
        if headers is not None:
            kind = SpanKind.SERVER
            context = extract_context(headers.get("traceparent"), headers.get("tracestate"))
        with self._tracer.start_as_current_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield _Step(span)
            except BaseException as exc:
                span.set_attribute("hoist.outcome", _reason(exc))
                span.set_status(Status(StatusCode.ERROR, _reason(exc)))
                raise
            span.set_attribute("hoist.outcome", "ok")

    def request(self, name: str, headers: Mapping[str, str]) -> AbstractContextManager[_Step]:
        """The adapter API call that asks for `name` (its steps become children)."""
        return self._span("PUT /adapters/{name}", {"hoist.adapter": name}, headers=headers)

    def fetch(self, name: str, source: str) -> AbstractContextManager[_Step]:
        attributes = {
            "hoist.adapter": name,
            "hoist.adapter.source_scheme": source_scheme(source),
            "hoist.adapter.source": safe_source(source),
        }
        return self._span("adapter.fetch", attributes)

    def load(self, name: str) -> AbstractContextManager[_Step]:
        return self._span("adapter.load", {"hoist.adapter": name})
