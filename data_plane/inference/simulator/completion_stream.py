"""A chat or completion answer as vLLM streams it: SSE chunks per engine step, the usage
chunk when asked for, then `data: [DONE]`."""

from __future__ import annotations

import time

from aiohttp import web

from data_plane.inference.simulator.engine import SimEngine, Sink
from data_plane.inference.simulator.generation_state import Generation
from data_plane.inference.simulator.http_framing import SSE_DONE, SSE_HEADERS, sse_event
from data_plane.inference.simulator.protocol.answers import usage
from data_plane.inference.simulator.protocol.chunks import chat_chunk, completion_chunk, usage_chunk


async def stream_completion(
    request: web.Request,
    generation: Generation,
    sink: Sink,
    *,
    engine: SimEngine,
    fingerprint: str,
    stamp_chunks: bool,
) -> web.StreamResponse:
    """Write `generation` to the client as its tokens arrive in `sink` (`stamp_chunks`: add
    `hoist_sent_ns` to every token chunk)."""
    params = generation.params
    chat = params.kind == "chat"
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    rid, created, model = generation.request_id, generation.created, generation.model
    continuous = params.include_usage and params.continuous_usage_stats
    if chat:  # vLLM opens a chat stream with the role; a completion stream with text
        first = bytearray()
        for index in range(len(generation.choices)):
            chunk = chat_chunk(
                request_id=rid, created=created, model=model, index=index, text="", first=True
            )
            if continuous:
                chunk["usage"] = usage(generation.prompt_tokens, 0, details=False)
            first += sse_event(chunk)
        await response.write(bytes(first))
    # The fingerprint rides on the last chunk of the stream: the usage chunk if any.
    tag_finish = not params.include_usage
    build = chat_chunk if chat else completion_chunk
    while not generation.done:
        out = bytearray()
        for sequence, index in await sink.next_batch():
            text = generation.advance(engine, sequence, index)
            if text is None:
                continue
            choice = generation.choices[sequence.index]
            finished = choice.finish_reason is not None
            tool = generation.tool
            delta = generation.tool_delta(choice) if tool is not None else None
            if tool is not None and delta is None:
                continue
            chunk = build(
                request_id=rid,
                created=created,
                model=model,
                index=sequence.index,
                text=text,
                finish_reason=choice.finish_reason
                if tool is None or not finished
                else tool.finish_reason,
                stop_reason=choice.stop_reason if tool is None else None,
                fingerprint=fingerprint if finished and tag_finish else None,
                logprobs=generation.logprobs_of(choice, fresh=True),
            )
            if delta is not None:
                chunk["choices"][0]["delta"] = delta
            if continuous:
                chunk["usage"] = usage(
                    generation.prompt_tokens, generation.completion_tokens, details=False
                )
            if stamp_chunks:
                chunk["hoist_sent_ns"] = time.monotonic_ns()
            out += sse_event(chunk)
        if out:
            await response.write(bytes(out))
    tail = b""
    if params.include_usage:
        tail = sse_event(
            usage_chunk(
                kind=params.kind,
                request_id=rid,
                created=created,
                model=model,
                fingerprint=fingerprint,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
            )
        )
    await response.write(tail + SSE_DONE)
    await response.write_eof()
    return response
