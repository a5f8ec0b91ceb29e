"""`POST /v1/responses`: the Responses API over a chat generation (one choice), whole or as
its typed event stream (`responses_api.py` builds the objects and events)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from data_plane.inference.simulator import responses_api
from data_plane.inference.simulator.engine import Sink
from data_plane.inference.simulator.generation_state import Generation
from data_plane.inference.simulator.generations import Generations, resolve_model
from data_plane.inference.simulator.http_framing import SSE_HEADERS, json_response, read_json_body
from data_plane.inference.simulator.protocol.sampling import check_sampling


class ResponsesRoutes:
    """The Responses API of one engine (no store: `previous_response_id` is refused)."""

    def __init__(self, generations: Generations) -> None:
        self.generations = generations
        self.engine = generations.engine

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self.responses)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        engine = self.engine
        body = await read_json_body(request)
        params, fields = responses_api.parse_responses(body)
        model, adapter = resolve_model(engine, params.model)
        params = check_sampling(params, fields, body, engine.max_model_len)
        generation, sink = self.generations.submit(params, model, adapter)
        response_id = f"resp_{secrets.token_hex(8)}"
        try:
            if params.stream:
                return await self._stream_response(request, body, generation, sink, response_id)
            await self.generations.drain(generation, sink)
            return json_response(self._response_object(body, generation, response_id))
        finally:
            self.generations.abort_unfinished(generation)

    def _response_object(
        self, body: Any, generation: Generation, response_id: str, item_id: str | None = None
    ) -> dict[str, Any]:
        choice = generation.choices[0]
        text = choice.text
        return responses_api.response_object(
            body,
            response_id=response_id,
            created=generation.created,
            model=generation.model,
            status="incomplete" if choice.finish_reason == "length" else "completed",
            output=[responses_api.output_message(item_id or f"msg_{secrets.token_hex(16)}", text)],
            usage=responses_api.response_usage(
                generation.prompt_tokens, generation.completion_tokens
            ),
        )

    async def _stream_response(
        self,
        request: web.Request,
        body: Any,
        generation: Generation,
        sink: Sink,
        response_id: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=SSE_HEADERS)
        await response.prepare(request)
        initial = responses_api.response_object(
            body,
            response_id=response_id,
            created=generation.created,
            model=generation.model,
            status="in_progress",
            output=[],
            usage=None,
        )
        event = responses_api.event
        await response.write(
            event("response.created", 0, response=initial)
            + event("response.in_progress", 1, response=initial)
        )
        item_id = f"msg_{secrets.token_hex(16)}"
        sequence = 2
        opened = False
        while not generation.done:
            out = bytearray()
            for seq, index in await sink.next_batch():
                text = generation.advance(self.engine, seq, index)
                if not text:
                    continue
                if not opened:
                    out += responses_api.opening_events(item_id, sequence)
                    sequence, opened = sequence + 2, True
                out += responses_api.delta_event(item_id, sequence, text)
                sequence += 1
            if out:
                await response.write(bytes(out))
        final = self._response_object(body, generation, response_id, item_id)
        tail = b""
        if opened:
            tail = responses_api.closing_events(item_id, sequence, generation.choices[0].text)
            sequence += 3
        else:
            final["output"] = []
        await response.write(tail + event("response.completed", sequence, response=final))
        await response.write_eof()
        return response
