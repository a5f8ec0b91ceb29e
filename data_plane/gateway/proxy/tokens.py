"""Token counts of an answer, read from its usage, for the gateway's metrics."""

from __future__ import annotations

import re

from data_plane.gateway.proxy.asgi import Series
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.tracing import RequestSpan

_PROMPT_TOKENS = re.compile(rb'"(?:prompt|input)_tokens"\s*:\s*(\d+)')  # Responses: input/output
_COMPLETION_TOKENS = re.compile(rb'"(?:completion|output)_tokens"\s*:\s*(\d+)')


def count_tokens(gw: Gateway, series: Series, payload: bytes, trace: RequestSpan | None) -> None:
    if trace is not None:
        trace.usage(payload)
    tail = payload[-1024:]
    prompt = _PROMPT_TOKENS.search(tail) or _PROMPT_TOKENS.search(payload)
    completion = _COMPLETION_TOKENS.search(tail) or _COMPLETION_TOKENS.search(payload)
    if prompt is not None:
        gw.metrics.add(gw.metrics.prompt_tokens, *series, amount=int(prompt.group(1)))
    if completion is not None:
        gw.metrics.add(gw.metrics.output_tokens, *series, amount=int(completion.group(1)))


def count_stream(  # noqa: PLR0917
    gw: Gateway,
    series: Series,
    tail: bytes,
    events: int,
    after_first: float,
    trace: RequestSpan | None,
) -> None:
    if trace is not None:
        trace.usage(tail, streamed_events=events)
    prompt = _PROMPT_TOKENS.search(tail)
    completion = _COMPLETION_TOKENS.search(tail)
    if prompt is not None:
        gw.metrics.add(gw.metrics.prompt_tokens, *series, amount=int(prompt.group(1)))
    # Without usage: one chunk per token, less the closing `[DONE]`.
    tokens = int(completion.group(1)) if completion is not None else max(0, events - 1)
    gw.metrics.add(gw.metrics.output_tokens, *series, amount=tokens)
    if tokens > 1:
        gw.metrics.observe(gw.metrics.tpot, after_first / (tokens - 1), *series)
