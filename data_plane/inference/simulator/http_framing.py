"""The simulator's answers on the wire (aiohttp): JSON bodies, OpenAI-shaped errors, SSE
events, and the request body decoded as vLLM decodes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from data_plane.inference.simulator.protocol.errors import ApiError, json_error

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
SSE_DONE = b"data: [DONE]\n\n"
"""The event that ends a chat or completion stream."""


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), status=error.status)


def sse_event(chunk: Mapping[str, Any]) -> bytes:
    """One chunk as an SSE `data:` event."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def read_json_body(request: web.Request) -> Any:
    """The decoded body, or the pydantic-style error vLLM answers to one that is not JSON."""
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise json_error(str(exc).split(":")[0]) from None
