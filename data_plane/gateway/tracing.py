"""The gateway's span per proxied request, when tracing is on (`data_plane.telemetry`).

The proxy holds a `RequestSpan` only when the gateway has a tracer (`Gateway.tracer`);
with tracing off it holds None and none of this runs: no context is parsed, no span
object exists. A span joins the caller's W3C trace (`traceparent` / `tracestate`), names
itself the engine's parent (`header` goes into the proxied request in place of the
caller's), and records:

| attribute | what |
|---|---|
| `gen_ai.operation.name` | `chat` or `text_completion` |
| `gen_ai.request.model` | the model asked for |
| `hoist.model`, `hoist.adapter` | the base model routed to, and the adapter if any |
| `hoist.tenant` | the caller's tenant, hashed (`control_plane.api.tracing.tenant_hash`) |
| `hoist.replica` | the replica that answered (the last one tried) |
| `hoist.retries` | attempts after the first |
| `http.response.status_code`, `hoist.outcome` | the status sent, and the status class |
| `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` | the answer's usage |

and the event `first_token` when a stream's first chunk reaches the client (TTFT).
"""

from __future__ import annotations

import re

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from control_plane.api.tracing import tenant_hash
from data_plane.gateway.request_fields import Endpoint
from data_plane.telemetry import extract_context, traceparent_of

TRACE_HEADERS = (b"traceparent", b"tracestate")
"""Replaced in the proxied request by the gateway span's own (when tracing is on)."""
_OPERATION = {Endpoint.CHAT: "chat", Endpoint.COMPLETIONS: "text_completion"}
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


class RequestSpan:
    """One request's span, from its arrival until its answer ended.

    What the request learns on its way is kept in plain slots and given to the span once,
    at the end (each attribute set on an SDK span takes its lock and validates the value)."""

    __slots__ = (
        "_adapter",
        "_attempts",
        "_input_tokens",
        "_model",
        "_operation",
        "_output_tokens",
        "_recording",
        "_replica",
        "_requested",
        "_status",
        "_tenant",
        "span",
    )

    def __init__(
        self, tracer: Tracer, endpoint: Endpoint, traceparent: bytes, tracestate: bytes
    ) -> None:
        context = extract_context(traceparent.decode("latin-1"), tracestate.decode("latin-1"))
        self._operation = _OPERATION.get(endpoint, str(endpoint))
        self._attempts = self._status = 0
        self._requested = self._model = self._adapter = self._tenant = self._replica = ""
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self.span: Span = tracer.start_span(self._operation, context=context, kind=SpanKind.SERVER)
        self._recording = self.span.is_recording()
        """False when the sampler left the request out: then nothing is noted for it."""

    def header(self) -> bytes:
        """The W3C header lines that make this span the engine's parent."""
        parent, state = traceparent_of(self.span)
        line = f"traceparent: {parent}\r\n"
        if state:
            line += f"tracestate: {state}\r\n"
        return line.encode("latin-1")

    def asked_for(self, model: str) -> None:
        self._requested = model

    def routed(self, model: str, adapter: str | None, tenant: str | None) -> None:
        self._model = model
        self._adapter = adapter or ""
        self._tenant = tenant or ""

    def attempt(self, replica: str) -> None:
        self._attempts += 1
        self._replica = replica

    def first_token(self) -> None:
        if self._recording:
            self.span.add_event("first_token")

    def responded(self, status: int) -> None:
        self._status = status

    def usage(self, payload: bytes, *, streamed_events: int | None = None) -> None:
        """Token counts from the answer's `usage` (a stream's tail); a stream without usage
        counts one token per event less the closing `[DONE]`."""
        if not self._recording:
            return
        prompt = _PROMPT_TOKENS.search(payload)
        completion = _COMPLETION_TOKENS.search(payload)
        if prompt is not None:
            self._input_tokens = int(prompt.group(1))
        if completion is not None:
            self._output_tokens = int(completion.group(1))
        elif streamed_events is not None:
            self._output_tokens = max(0, streamed_events - 1)

    def end(self, outcome: str) -> None:
        """`outcome`: the status class the request's metrics count (`2xx`, `client_closed`...)."""
        span = self.span
        if self._recording:
            span.set_attributes(self._attributes(outcome))
            if self._requested:
                span.update_name(f"{self._operation} {self._requested}")
            if outcome.startswith("5") or outcome == "stream_error":
                span.set_status(Status(StatusCode.ERROR, outcome))
        span.end()

    def _attributes(self, outcome: str) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "gen_ai.operation.name": self._operation,
            "http.request.method": "POST",
            "hoist.outcome": outcome,
            "hoist.retries": max(0, self._attempts - 1),
        }
        known: dict[str, str | int] = {
            "gen_ai.request.model": self._requested,
            "hoist.model": self._model,
            "hoist.adapter": self._adapter,
            "hoist.tenant": tenant_hash(self._tenant) if self._tenant else "",
            "hoist.replica": self._replica,
        }
        out.update((k, v) for k, v in known.items() if v != "")
        if self._status:
            out["http.response.status_code"] = self._status
        if self._input_tokens is not None:
            out["gen_ai.usage.input_tokens"] = self._input_tokens
        if self._output_tokens is not None:
            out["gen_ai.usage.output_tokens"] = self._output_tokens
        return out
