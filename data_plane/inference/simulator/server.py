"""The HTTP face of a simulated engine: vLLM's OpenAI-compatible API on aiohttp.web.

Routes (as vLLM 0.32 serves them): `GET /health`, `GET|POST /ping`, `GET /version`,
`GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`, `POST /v1/responses`,
`POST /v1/load_lora_adapter`, `POST /v1/unload_lora_adapter`, `GET /metrics`; with
`runner="pooling"` (vLLM's `--runner pooling`) `POST /v1/embeddings` instead of the three
generating routes, as vLLM registers only the routes of the model's tasks.
Unknown paths answer `{"detail": "Not Found"}` (404), wrong methods
`{"detail": "Method Not Allowed"}` (405), like FastAPI. A request that fails never takes
the engine down: every error becomes an OpenAI-shaped JSON answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from opentelemetry.trace import Span, Tracer

from data_plane.inference.simulator import embeddings, responses_api, tool_calls
from data_plane.inference.simulator.engine import LoadedAdapter, SimEngine, Sink
from data_plane.inference.simulator.engine_core import SimRequest
from data_plane.inference.simulator.logprobs import (
    TokenLogprob,
    chat_logprobs,
    completion_logprobs,
    token_logprob,
)
from data_plane.inference.simulator.protocol import (
    VLLM_VERSION,
    ApiError,
    ChoiceResult,
    GenerationParams,
    chat_body,
    chat_chunk,
    check_prompt_length,
    check_sampling,
    completion_body,
    completion_chunk,
    json_error,
    model_card,
    model_not_found,
    parse_chat,
    parse_completion,
    schema_error,
    system_fingerprint,
    usage,
    usage_chunk,
)
from data_plane.inference.simulator.text import plan_output, render_chat, token_text, tokenize
from data_plane.inference.simulator.tracing import engine_span, record_error, record_generation

log = logging.getLogger(__name__)

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(error: ApiError) -> web.Response:
    return _json(error.body(), status=error.status)


def _sse(chunk: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@dataclass
class _Choice:
    """What one choice has produced so far."""

    sequence: SimRequest
    text: str = ""
    emitted: int = 0
    tokens: int = 0
    finish_reason: str | None = None
    stop_reason: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    reported: int = 0
    """Log-probabilities already sent (streams send each token's once)."""
    text_offset: int = 0
    """Characters already sent, where the next completion logprobs' offsets start."""
    call_id: str = ""
    """With a forced tool: the call's id, its `arguments` and their streamed pieces."""
    arguments: str = ""
    pieces: list[str] = field(default_factory=list)
    pieces_sent: int = 0
    named: bool = False
    """The stream has sent the delta that opens the call."""


@dataclass
class _Generation:
    """One API request in flight: its choices and the bookkeeping to answer it."""

    params: GenerationParams
    request_id: str
    created: int
    model: str
    prompt_tokens: int
    choices: list[_Choice]
    max_stop: int = field(init=False)
    tool: tool_calls.ForcedTool | None = None
    """The tool every choice calls (`tool_choice` "required" or named); None: text."""

    def __post_init__(self) -> None:
        self.max_stop = max((len(s) for s in self.params.stop), default=0)

    @property
    def done(self) -> bool:
        return all(choice.finish_reason is not None for choice in self.choices)

    @property
    def completion_tokens(self) -> int:
        return sum(choice.tokens for choice in self.choices)

    def advance(self, engine: SimEngine, sequence: SimRequest, index: int) -> str | None:
        """Record output token `index` of `sequence`; return the text to emit, or None when
        the choice already ended. Detects stop strings (ending the choice early) and, like
        vLLM, holds back the last len(stop) - 1 characters until they cannot start one."""
        choice = self.choices[sequence.index]
        if choice.finish_reason is not None:
            return None
        token_id = sequence.output_token_ids[index]
        piece = token_text(token_id)
        choice.tokens += 1
        asked = self.params.logprobs
        if asked is not None:
            alternatives = asked if self.params.kind == "chat" else max(asked, 1)
            choice.logprobs.append(token_logprob(piece, token_id, index, alternatives))
        searched_to = len(choice.text)
        choice.text += piece
        last = index + 1 >= len(sequence.output_token_ids)
        emit_to = len(choice.text)
        if self.max_stop:
            window = max(searched_to - self.max_stop + 1, 0)
            hits = [
                (position, stop)
                for stop in self.params.stop
                if (position := choice.text.find(stop, window)) >= 0
            ]
            if hits:
                position, stop = min(hits)
                choice.text = choice.text[:position]
                choice.finish_reason, choice.stop_reason = "stop", stop
                if not last:
                    engine.finish_early(sequence, "stop")
                return self._emit(choice, len(choice.text))
            if not last:
                emit_to = max(len(choice.text) - self.max_stop + 1, choice.emitted)
        if last:
            choice.finish_reason = sequence.planned_finish
        return self._emit(choice, emit_to)

    def logprobs_of(self, choice: _Choice, *, fresh: bool) -> dict[str, Any] | None:
        """The choice's logprobs in the answer's shape (`fresh`: only those not yet sent)."""
        asked = self.params.logprobs
        if asked is None:
            return None
        entries = choice.logprobs[choice.reported :] if fresh else choice.logprobs
        offset = choice.text_offset if fresh else 0
        if fresh:
            choice.reported = len(choice.logprobs)
            choice.text_offset += sum(len(e.text) for e in entries)
        if self.params.kind == "chat":
            return chat_logprobs(entries, asked)
        return completion_logprobs(entries, asked, offset)

    def force_tool(self, tool: tool_calls.ForcedTool) -> None:
        """Answer each choice with a call of `tool` instead of its text."""
        self.tool = tool
        for index, choice in enumerate(self.choices):
            choice.call_id = f"chatcmpl-tool-{secrets.token_hex(8)}"
            choice.arguments = tool_calls.arguments(tool, self.params.seed, index)
            planned = len(choice.sequence.output_token_ids)  # the first token names the call
            choice.pieces = tool_calls.argument_pieces(choice.arguments, planned - 1)

    def tool_delta(self, choice: _Choice) -> dict[str, Any] | None:
        """The streamed delta of the choice's call for the token just advanced; None: this
        token adds nothing (the arguments are shorter than the tokens)."""
        assert self.tool is not None
        if not choice.named:
            choice.named = True
            opening = tool_calls.first_delta(choice.call_id, self.tool.name)
            if choice.finish_reason is not None:  # a one-token answer: the whole call at once
                opening["tool_calls"][0]["function"]["arguments"] = choice.arguments
                choice.pieces_sent = len(choice.pieces)
            return opening
        if choice.finish_reason is not None:
            piece = "".join(choice.pieces[choice.pieces_sent :])
            choice.pieces_sent = len(choice.pieces)
        elif choice.pieces_sent < len(choice.pieces):
            piece = choice.pieces[choice.pieces_sent]
            choice.pieces_sent += 1
        else:
            return None
        return tool_calls.argument_delta(piece) if piece else {}

    @staticmethod
    def _emit(choice: _Choice, end: int) -> str:
        out = choice.text[choice.emitted : end]
        choice.emitted = end
        return out


class _Running(NamedTuple):
    generation: _Generation
    sink: Sink


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class SimServer:
    """The aiohttp application of one engine."""

    def __init__(
        self,
        engine: SimEngine,
        *,
        accept_missing_lora_paths: bool = False,
        stamp_chunks: bool = False,
        tracer: Tracer | None = None,
        runner: str = "generate",
        embedding_dim: int = 64,
    ) -> None:
        self.engine = engine
        self.tracer = tracer
        """A span per generation (tracing.py); None: tracing is off."""
        self.runner = runner
        """vLLM's `--runner`: `generate` (chat, completions, responses) or `pooling`."""
        self.embedding_dim = embedding_dim
        self.accept_missing_lora_paths = accept_missing_lora_paths
        self.stamp_chunks = stamp_chunks
        """`SimulatorSettings.stamp_chunks`."""
        self.created = int(time.time())
        self.fingerprint = system_fingerprint(engine.served_model_name)
        self._adapter_locks: dict[str, asyncio.Lock] = {}

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/health", self.health)
        app.router.add_route("*", "/ping", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/v1/models", self.models)
        if self.runner == "pooling":
            app.router.add_post("/v1/embeddings", self.embeddings)
        else:
            app.router.add_post("/v1/completions", self.completions)
            app.router.add_post("/v1/chat/completions", self.chat_completions)
            app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/load_lora_adapter", self.load_lora_adapter)
        app.router.add_post("/v1/unload_lora_adapter", self.unload_lora_adapter)
        app.router.add_get("/metrics", self.metrics)
        app.on_startup.append(self._start_engine)
        app.on_cleanup.append(self._stop_engine)
        return app

    async def _start_engine(self, _: web.Application) -> None:
        await self.engine.start()

    async def _stop_engine(self, _: web.Application) -> None:
        await self.engine.stop()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return _error(error)
        except web.HTTPMethodNotAllowed:
            return _json({"detail": "Method Not Allowed"}, status=405)
        except web.HTTPNotFound:
            return _json({"detail": "Not Found"}, status=404)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # the engine keeps serving; the client gets a 500
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return _error(ApiError(str(exc), status=500, err_type="InternalServerError"))

    # -- simple routes -------------------------------------------------------------------

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, _: web.Request) -> web.Response:
        return _json({"version": VLLM_VERSION})

    async def models(self, _: web.Request) -> web.Response:
        engine = self.engine
        cards = [
            model_card(
                model_id=engine.served_model_name,
                created=self.created,
                root=engine.served_model_name,
                parent=None,
                max_model_len=engine.max_model_len,
            )
        ]
        cards.extend(
            model_card(
                model_id=adapter.name,
                created=adapter.created,
                root=adapter.path,
                parent=engine.served_model_name,
                max_model_len=None,
            )
            for adapter in engine.adapters.values()
        )
        return _json({"object": "list", "data": cards})

    async def metrics(self, _: web.Request) -> web.Response:
        self.engine.refresh_metrics()
        return web.Response(
            body=self.engine.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    # -- adapters ------------------------------------------------------------------------

    async def _json_body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise json_error(str(exc).split(":")[0]) from None

    def _require(self, body: Any, names: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise schema_error(
                "model_attributes_type",
                "",
                "Input should be a valid dictionary or object to extract fields from",
                body,
            )
        missing = [name for name in names if name not in body]
        for name in names:
            value = body.get(name)
            if name in body and not isinstance(value, str):
                raise schema_error("string_type", name, "Input should be a valid string", value)
        if missing:
            details = "\n".join(
                f"  {{'type': 'missing', 'loc': 'body.{name}', 'msg': 'Field required', "
                f"'input': '<dict of {len(body)} items>'}}"
                for name in missing
            )
            count = f"{len(missing)} validation error" + ("s" if len(missing) > 1 else "")
            raise ApiError(
                f"{count}:\n{details}", err_type="Bad Request", param=f"body.{missing[0]}"
            )
        return body

    async def load_lora_adapter(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = self._require(await self._json_body(request), ("lora_name", "lora_path"))
        name, path = body["lora_name"], body["lora_path"]
        if not engine.enable_lora:
            raise ApiError("LoRA is not enabled; start the engine with --enable-lora.")
        if not name or not path:
            raise ApiError(
                "Both 'lora_name' and 'lora_path' must be provided.", err_type="InvalidUserInput"
            )
        if name == engine.served_model_name:
            raise ApiError(
                f"The lora adapter '{name}' conflicts with a served base model.",
                err_type="InvalidUserInput",
            )
        load_inplace = bool(body.get("load_inplace", False))
        lock = self._adapter_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in engine.adapters and not load_inplace:
                raise ApiError(
                    f"The lora adapter '{name}' has already been loaded. If you want to load "
                    "the adapter in place, set 'load_inplace' to True.",
                    err_type="InvalidUserInput",
                )
            rank = await asyncio.to_thread(self._adapter_rank, name, path)
            await engine.sleep_simulated(engine.profile.lora_load_s)
            engine.adapters[name] = LoadedAdapter(
                name=name, path=path, rank=rank, created=int(time.time())
            )
            if load_inplace:
                engine.core.lora_slots.evict(name)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    def _adapter_rank(self, name: str, path: str) -> int | None:
        """Check the adapter folder as vLLM would, without reading weights."""
        folder = Path(path)
        if not folder.exists():
            if self.accept_missing_lora_paths:
                return None
            raise ApiError(
                f"Loading lora {name} failed: No adapter found for {path}",
                status=404,
                err_type="NotFoundError",
            )
        config_path = folder / "adapter_config.json"
        if not config_path.is_file():
            if self.accept_missing_lora_paths:
                return None
            raise ApiError(
                f"Loading lora {name} failed: No adapter found for {path}",
                status=404,
                err_type="NotFoundError",
            )
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise ApiError(
                f"Loading lora {name} failed: {exc}", status=500, err_type="InternalServerError"
            ) from None
        ranks = [config.get("r", 0)]
        pattern = config.get("rank_pattern")
        if isinstance(pattern, Mapping):
            ranks.extend(pattern.values())
        rank = max(int(r) for r in ranks if isinstance(r, int | float))
        if rank > self.engine.max_lora_rank:
            raise ApiError(
                f"LoRA rank {rank} is greater than max_lora_rank {self.engine.max_lora_rank}.",
                status=500,
                err_type="InternalServerError",
            )
        return rank

    async def unload_lora_adapter(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = self._require(await self._json_body(request), ("lora_name",))
        name = body["lora_name"]
        if not name:
            raise ApiError(
                "'lora_name' needs to be provided to unload a LoRA adapter.",
                err_type="InvalidUserInput",
            )
        lock = self._adapter_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in engine.adapters:
                raise ApiError(
                    f"The lora adapter '{name}' cannot be found.",
                    status=404,
                    err_type="NotFoundError",
                )
            del engine.adapters[name]
            engine.core.lora_slots.evict(name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    # -- generation ----------------------------------------------------------------------

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

    def _start(self, params: GenerationParams, model: str, adapter: str | None) -> _Generation:
        engine = self.engine
        if params.kind == "chat":
            assert params.messages is not None
            prompts: list[list[int]] = [tokenize(render_chat(params.messages))]
        else:
            prompts = [p if isinstance(p, list) else tokenize(p) for p in params.prompts]
        for prompt in prompts:
            check_prompt_length(len(prompt), engine.max_model_len)
        prefix = "chatcmpl" if params.kind == "chat" else "cmpl"
        request_id = f"{prefix}-{secrets.token_hex(8)}"
        arrival = engine.now()
        sequences: list[SimRequest] = []
        for prompt_index, prompt in enumerate(prompts):
            room = engine.max_model_len - len(prompt)
            for i in range(params.n):
                index = prompt_index * params.n + i
                plan = plan_output(
                    engine_seed=engine.seed,
                    request_seed=params.seed,
                    adapter=adapter,
                    prompt_token_ids=prompt,
                    index=i,
                    max_tokens=params.max_tokens,
                    room=room,
                    ignore_eos=params.ignore_eos,
                )
                sequences.append(
                    SimRequest(
                        request_id=f"{request_id}-{index}",
                        prompt_token_ids=prompt,
                        output_token_ids=plan.token_ids,
                        arrival_time=arrival,
                        adapter=adapter,
                        cache_salt=params.cache_salt,
                        index=index,
                        planned_finish=plan.finish_reason,
                        max_tokens=min(params.max_tokens or room, room),
                    )
                )
        return _Generation(
            params=params,
            request_id=request_id,
            created=int(time.time()),
            model=model,
            prompt_tokens=sum(len(p) for p in prompts),
            choices=[_Choice(sequence) for sequence in sequences],
        )

    def _model(self, name: str | None) -> tuple[str, str | None]:
        """The model a request names (the base model when it names none), and its adapter."""
        engine = self.engine
        model = name or engine.served_model_name
        if model == engine.served_model_name:
            return model, None
        if model not in engine.adapters:
            raise model_not_found(model, engine.served_model_name)
        return model, model

    def _submit(self, params: GenerationParams, model: str, adapter: str | None) -> _Running:
        generation = self._start(params, model, adapter)
        sink = Sink()
        self.engine.submit([c.sequence for c in generation.choices], sink, n=params.n)
        return _Running(generation, sink)

    def _abort_unfinished(self, generation: _Generation) -> None:
        for choice in generation.choices:
            if choice.finish_reason is None:
                self.engine.finish_early(choice.sequence, "abort")

    async def _generate(
        self, request: web.Request, kind: str, span: Span | None = None
    ) -> web.StreamResponse:
        engine = self.engine
        body = await self._json_body(request)
        params, fields = parse_chat(body) if kind == "chat" else parse_completion(body)
        forced = tool_calls.check_tools(body) if kind == "chat" else None
        model, adapter = self._model(params.model)
        params = check_sampling(params, fields, body, engine.max_model_len)
        generation, sink = self._submit(params, model, adapter)
        if forced is not None:
            generation.force_tool(forced)
        try:
            if params.stream:
                return await self._stream(request, generation, sink)
            return await self._collect(generation, sink)
        finally:
            self._abort_unfinished(generation)
            if span is not None:
                record_generation(
                    span,
                    request_id=generation.request_id,
                    model=generation.model,
                    prompt_tokens=generation.prompt_tokens,
                    completion_tokens=generation.completion_tokens,
                )

    async def embeddings(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = await self._json_body(request)
        inputs, encoding, dimensions = embeddings.parse_inputs(body)
        model, _ = self._model(_str_or_none(body.get("model")))
        size = embeddings.check_dimensions(dimensions, self.embedding_dim, model)
        for token_ids in inputs:
            check_prompt_length(len(token_ids), engine.max_model_len)
        vectors = [
            embeddings.encode(
                embeddings.truncate(embeddings.vector(engine.seed, ids, self.embedding_dim), size),
                encoding,
            )
            for ids in inputs
        ]
        return _json(
            embeddings.embeddings_body(
                request_id=f"embd-{secrets.token_hex(16)}",
                created=int(time.time()),
                model=model,
                vectors=vectors,
                prompt_tokens=sum(len(ids) for ids in inputs),
            )
        )

    async def responses(self, request: web.Request) -> web.StreamResponse:
        engine = self.engine
        body = await self._json_body(request)
        params, fields = responses_api.parse_responses(body)
        model, adapter = self._model(params.model)
        params = check_sampling(params, fields, body, engine.max_model_len)
        generation, sink = self._submit(params, model, adapter)
        response_id = f"resp_{secrets.token_hex(8)}"
        try:
            if params.stream:
                return await self._stream_response(request, body, generation, sink, response_id)
            await self._drain(generation, sink)
            return _json(self._response_object(body, generation, response_id))
        finally:
            self._abort_unfinished(generation)

    def _response_object(
        self, body: Any, generation: _Generation, response_id: str, item_id: str | None = None
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

    async def _drain(self, generation: _Generation, sink: Sink) -> None:
        while not generation.done:
            for sequence, index in await sink.next_batch():
                generation.advance(self.engine, sequence, index)

    async def _stream_response(
        self,
        request: web.Request,
        body: Any,
        generation: _Generation,
        sink: Sink,
        response_id: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
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

    async def _collect(self, generation: _Generation, sink: Sink) -> web.Response:
        await self._drain(generation, sink)
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
        return _json(
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

    async def _stream(
        self, request: web.Request, generation: _Generation, sink: Sink
    ) -> web.StreamResponse:
        params = generation.params
        chat = params.kind == "chat"
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
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
                first += _sse(chunk)
            await response.write(bytes(first))
        # The fingerprint rides on the last chunk of the stream: the usage chunk if any.
        tag_finish = not params.include_usage
        build = chat_chunk if chat else completion_chunk
        while not generation.done:
            out = bytearray()
            for sequence, index in await sink.next_batch():
                text = generation.advance(self.engine, sequence, index)
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
                    fingerprint=self.fingerprint if finished and tag_finish else None,
                    logprobs=generation.logprobs_of(choice, fresh=True),
                )
                if delta is not None:
                    chunk["choices"][0]["delta"] = delta
                if continuous:
                    chunk["usage"] = usage(
                        generation.prompt_tokens, generation.completion_tokens, details=False
                    )
                if self.stamp_chunks:
                    chunk["hoist_sent_ns"] = time.monotonic_ns()
                out += _sse(chunk)
            if out:
                await response.write(bytes(out))
        tail = b""
        if params.include_usage:
            tail = _sse(
                usage_chunk(
                    kind=params.kind,
                    request_id=rid,
                    created=created,
                    model=model,
                    fingerprint=self.fingerprint,
                    prompt_tokens=generation.prompt_tokens,
                    completion_tokens=generation.completion_tokens,
                )
            )
        await response.write(tail + _DONE)
        await response.write_eof()
        return response
