"""`POST /v1/completions` and `POST /v1/chat/completions`: parse, check, generate, answer
whole (`_collect`) or as a stream (`completion_stream.py`); a span per request when
tracing is on."""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import Span, Tracer

from data_plane.inference.simulator import tool_calls
from data_plane.inference.simulator.completion_stream import stream_completion
from data_plane.inference.simulator.engine import Sink
from data_plane.inference.simulator.generation_state import Generation
from data_plane.inference.simulator.generations import Generations, resolve_model
from data_plane.inference.simulator.http_framing import json_response, read_json_body
from data_plane.inference.simulator.protocol.answers import ChoiceResult, chat_body, completion_body
from data_plane.inference.simulator.protocol.errors import ApiError
from data_plane.inference.simulator.protocol.generation import parse_chat, parse_completion
from data_plane.inference.simulator.protocol.sampling import check_sampling
from data_plane.inference.simulator.tracing import engine_span, record_error, record_generation


class CompletionRoutes:
    """The two token-generating OpenAI routes of one engine."""

    def __init__(
        self,
        generations: Generations,
        *,
        fingerprint: str,
        stamp_chunks: bool,
        tracer: Tracer | None,
    ) -> None:
        self.generations = generations
        self.engine = generations.engine
        self.fingerprint = fingerprint
        self.stamp_chunks = stamp_chunks
        """`SimulatorSettings.stamp_chunks`."""
        self.tracer = tracer
        """A span per generation (tracing.py); None: tracing is off."""

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat_completions)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        if self.tracer is not None:
            return await self._traced(request, "completion", self.tracer)
        return await self._generate(request, "completion")

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        if self.tracer is not None:
            return await self._traced(request, "chat", self.tracer)
        return await self._generate(request, "chat")

    async def _traced(self, request: web.Request, kind: str, tracer: Tracer) -> web.StreamResponse:
        span = engine_span(tracer, request.headers, kind)
        try:
            return await self._generate(request, kind, span)
        except ApiError as error:
            record_error(span, error.status, str(error))
            raise
        finally:
            span.end()

    async def _generate(
        self, request: web.Request, kind: str, span: Span | None = None
    ) -> web.StreamResponse:
        engine = self.engine
        body = await read_json_body(request)
        params, fields = parse_chat(body) if kind == "chat" else parse_completion(body)
        forced = tool_calls.check_tools(body) if kind == "chat" else None
        model, adapter = resolve_model(engine, params.model)
        params = check_sampling(params, fields, body, engine.max_model_len)
        generation, sink = self.generations.submit(params, model, adapter)
        if forced is not None:
            generation.force_tool(forced)
        try:
            if params.stream:
                return await stream_completion(
                    request,
                    generation,
                    sink,
                    engine=engine,
                    fingerprint=self.fingerprint,
                    stamp_chunks=self.stamp_chunks,
                )
            return await self._collect(generation, sink)
        finally:
            self.generations.abort_unfinished(generation)
            if span is not None:
                record_generation(
                    span,
                    request_id=generation.request_id,
                    model=generation.model,
                    prompt_tokens=generation.prompt_tokens,
                    completion_tokens=generation.completion_tokens,
                )

    async def _collect(self, generation: Generation, sink: Sink) -> web.Response:
        await self.generations.drain(generation, sink)
        tool = generation.tool
        choices = [
            ChoiceResult(
                index=i,
                text=choice.text,
                finish_reason=choice.finish_reason or "abort",
                stop_reason=choice.stop_reason,
                logprobs=generation.logprobs_of(choice, fresh=False),
            )
            if tool is None
            else ChoiceResult(
                index=i,
                text="",
                finish_reason=tool.finish_reason,
                stop_reason=None,
                logprobs=generation.logprobs_of(choice, fresh=False),
                tool_calls=[tool_calls.tool_call(choice.call_id, tool.name, choice.arguments)],
            )
            for i, choice in enumerate(generation.choices)
        ]
        build = chat_body if generation.params.kind == "chat" else completion_body
        return json_response(
            build(
                request_id=generation.request_id,
                created=generation.created,
                model=generation.model,
                fingerprint=self.fingerprint,
                choices=choices,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
            )
        )
