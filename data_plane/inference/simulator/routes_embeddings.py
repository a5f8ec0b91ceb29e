"""`POST /v1/embeddings` (vLLM's `--runner pooling`): deterministic vectors per input
(`embeddings.py`), checked like vLLM's pooling models."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from data_plane.inference.simulator import embeddings
from data_plane.inference.simulator.engine import SimEngine
from data_plane.inference.simulator.generations import resolve_model
from data_plane.inference.simulator.http_framing import json_response, read_json_body
from data_plane.inference.simulator.protocol.sampling import check_prompt_length


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class EmbeddingRoutes:
    """The embeddings route of one pooling engine."""

    def __init__(self, engine: SimEngine, *, embedding_dim: int) -> None:
        self.engine = engine
        self.embedding_dim = embedding_dim

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/embeddings", self.embeddings)

    async def embeddings(self, request: web.Request) -> web.Response:
        engine = self.engine
        body = await read_json_body(request)
        inputs, encoding, dimensions = embeddings.parse_inputs(body)
        model, _ = resolve_model(engine, _str_or_none(body.get("model")))
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
        return json_response(
            embeddings.embeddings_body(
                request_id=f"embd-{secrets.token_hex(16)}",
                created=int(time.time()),
                model=model,
                vectors=vectors,
                prompt_tokens=sum(len(ids) for ids in inputs),
            )
        )
