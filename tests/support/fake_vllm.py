"""A small vLLM-shaped engine for gateway tests: real HTTP on 127.0.0.1, switchable faults.

Serves `/v1/chat/completions` and `/v1/completions` (JSON and SSE, `include_usage`),
`/v1/models`, `/health` and `/metrics` (`vllm:num_requests_waiting`). It records every body
it received, and counts streams whose client went away.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import orjson
from aiohttp import web


class FakeVllm:
    def __init__(
        self,
        model: str = "tiny",
        *,
        tokens: int = 4,
        token_delay_s: float = 0.0,
        adapters: tuple[str, ...] = (),
        name: str = "engine",
    ) -> None:
        self.model = model
        self.name = name
        self.tokens = tokens
        self.token_delay_s = token_delay_s
        self.adapters = set(adapters)
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.fail_status: int | None = None
        """Answer every request with this status (until `fail_times` runs out)."""
        self.fail_times = 1_000_000
        self.hang = False
        """Never answer (until the client goes away)."""
        self.break_after_chunks: int | None = None
        """Streams: drop the connection after this many chunks."""
        self.waiting = 0
        self.cancelled = 0
        self.in_flight = 0
        self._ids = itertools.count()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def requests(self) -> int:
        return len(self.bodies)

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="")

    async def _metrics(self, _: web.Request) -> web.Response:
        running = ",".join(sorted(self.adapters))
        text = (
            "# TYPE vllm:num_requests_waiting gauge\n"
            f'vllm:num_requests_waiting{{model_name="{self.model}"}} {float(self.waiting)}\n'
            f'vllm:num_requests_running{{model_name="{self.model}"}} {float(self.in_flight)}\n'
            f'vllm:lora_requests_info{{max_lora="4",running_lora_adapters="{running}",'
            f'waiting_lora_adapters=""}} {time.time()}\n'
        )
        return web.Response(text=text, content_type="text/plain")

    async def _models(self, _: web.Request) -> web.Response:
        data = [{"id": self.model, "object": "model", "parent": None}]
        data += [{"id": a, "object": "model", "parent": self.model} for a in sorted(self.adapters)]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        raw = await request.read()
        self.bodies.append(raw)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.in_flight += 1
        try:
            return await self._answer(request, raw, chat=chat)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, raw: bytes, *, chat: bool) -> web.StreamResponse:
        if self.fail_status is not None and self.fail_times > 0:
            self.fail_times -= 1
            error = {
                "error": {
                    "message": "engine failure",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return web.json_response(error, status=self.fail_status)
        if self.hang:
            await asyncio.Event().wait()
        body: dict[str, Any] = orjson.loads(raw)  # the gateway only forwards JSON objects
        model = body.get("model")
        if model != self.model and model not in self.adapters:
            error = {
                "error": {
                    "message": f"The model `{model}` does not exist.",
                    "type": "NotFoundError",
                    "param": "model",
                    "code": 404,
                }
            }
            return web.json_response(error, status=404)
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 0):
            error = {"error": {"message": "max_tokens must be a non-negative integer",
                               "type": "BadRequestError", "param": "max_tokens", "code": 400}}  # fmt: skip
            return web.json_response(error, status=400)
        n = min(int(max_tokens or self.tokens), 64)
        rid = f"cmpl-{next(self._ids)}"
        created = int(time.time())
        usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
        if not body.get("stream"):
            await asyncio.sleep(self.token_delay_s * n)
            text = " ".join(f"t{i}" for i in range(n))
            if chat:
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length",
                }
                obj = "chat.completion"
            else:
                choice = {"index": 0, "text": text, "finish_reason": "length"}
                obj = "text_completion"
            return web.json_response(
                {
                    "id": rid,
                    "object": obj,
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        return await self._stream(request, body, rid, n, chat=chat)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], rid: str, n: int, *, chat: bool
    ) -> web.StreamResponse:
        model = body.get("model")
        created = int(time.time())
        usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"
        for i in range(n):
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            if self.break_after_chunks is not None and i >= self.break_after_chunks:
                assert request.transport is not None
                request.transport.close()
                return response
            last = i == n - 1
            if chat:
                choice = {
                    "index": 0,
                    "delta": {"content": f"t{i} "},
                    "finish_reason": "length" if last else None,
                }
            else:
                choice = {"index": 0, "text": f"t{i} ", "finish_reason": "length" if last else None}
            chunk = {
                "id": rid,
                "object": obj,
                "created": created,
                "model": model,
                "choices": [choice],
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage") is True:
            chunk = {
                "id": rid,
                "object": obj,
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
