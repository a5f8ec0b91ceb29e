"""The simulator's span per generation, as vLLM exports its own (`llm_request`).

With tracing on (`data_plane.telemetry`, the `OTEL_*` variables), each completion or chat
request gets one span, a child of the caller's `traceparent` when it sent one (the
gateway does), with the attributes vLLM 0.32 puts on its `llm_request` span that the
simulator can know: the model, the request id and the token counts. With tracing off
the server holds no tracer and none of this runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from data_plane.telemetry import extract_context

SPAN_NAME = "llm_request"


def engine_span(tracer: Tracer, headers: Mapping[str, str], kind: str) -> Span:
    """A span for one generation request, joined to the caller's W3C trace context."""
    context = extract_context(headers.get("traceparent"), headers.get("tracestate"))
    return tracer.start_span(
        SPAN_NAME,
        context=context,
        kind=SpanKind.SERVER,
        attributes={"gen_ai.operation.name": "chat" if kind == "chat" else "text_completion"},
    )


def record_generation(
    span: Span,
    *,
    request_id: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    span.set_attribute("gen_ai.request.id", request_id)
    span.set_attribute("gen_ai.response.model", model)
    span.set_attribute("gen_ai.usage.prompt_tokens", prompt_tokens)
    span.set_attribute("gen_ai.usage.completion_tokens", completion_tokens)


def record_error(span: Span, status: int, message: str) -> None:
    span.set_attribute("http.response.status_code", status)
    span.set_status(Status(StatusCode.ERROR, message))
