"""vLLM's `/v1/embeddings` for a simulated pooling model: request checks, vectors and the
answer, as vLLM 0.32 sends them. Pure: no I/O.

A vector is a deterministic function of the engine seed and the input's token ids: each
token contributes a seeded pseudo-random direction and the sum is L2-normalised (vLLM's
embedding poolers normalise too), so equal inputs get equal vectors and inputs that share
words point the same way more than unrelated ones. `encoding_format` `float` gives a list
of numbers, `base64` the little-endian float32 bytes, base64-encoded (vLLM's defaults).
`dimensions` truncates (then re-normalises), as for a Matryoshka model.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from data_plane.inference.simulator.protocol.errors import ApiError, as_mapping, schema_error
from data_plane.inference.simulator.protocol.fields import is_token_list
from data_plane.inference.simulator.text import render_chat, tokenize

_FORMATS = ("float", "base64")


def parse_inputs(body: Any) -> tuple[list[list[int]], str, int | None]:
    """The token ids of each input, the encoding format and `dimensions` (or None)."""
    body = as_mapping(body)
    if "input" not in body and "messages" not in body:
        raise schema_error("missing", "input", "Field required", body)
    value = body.get("input", body.get("messages"))
    inputs: list[list[int]]
    if isinstance(value, str):
        inputs = [tokenize(value)]
    elif is_token_list(value) and value:
        inputs = [list(value)]
    elif isinstance(value, list) and value and all(isinstance(m, Mapping) for m in value):
        inputs = [tokenize(render_chat(value))]  # one conversation, as vLLM embeds chat
    elif isinstance(value, list) and value:
        inputs = []
        for item in value:
            if isinstance(item, str):
                inputs.append(tokenize(item))
            elif is_token_list(item) and item:
                inputs.append(list(item))
            else:
                raise schema_error("string_type", "input", "Input should be a valid string", value)
    else:
        raise ApiError("Input cannot be empty. (parameter=input)", param="input")
    encoding = body.get("encoding_format", "float") or "float"
    if encoding not in _FORMATS:
        raise schema_error(
            "literal_error", "encoding_format", "Input should be 'float' or 'base64'", encoding
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)):
        raise schema_error("int_type", "dimensions", "Input should be a valid integer", dimensions)
    return inputs, encoding, dimensions


def check_dimensions(dimensions: int | None, size: int, model: str) -> int:
    if dimensions is None:
        return size
    if dimensions < 1:
        raise ApiError("Dimensions must be greater than 0", param="dimensions")
    if dimensions > size:
        raise ApiError(
            f'Model "{model}" does not support matryoshka representation, changing output '
            "dimensions will lead to poor results.",
            param="dimensions",
        )
    return dimensions


def _direction(seed: int, token: int, size: int) -> list[float]:
    out: list[float] = []
    counter = 0
    while len(out) < size:
        digest = hashlib.blake2b(f"{seed}:{token}:{counter}".encode(), digest_size=64).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return out[:size]


def vector(seed: int, token_ids: Sequence[int], size: int) -> list[float]:
    """The unit vector of one input (`size` numbers)."""
    total = [0.0] * size
    for token in token_ids:
        for i, x in enumerate(_direction(seed, token, size)):
            total[i] += x
    norm = math.sqrt(sum(x * x for x in total)) or 1.0
    return [x / norm for x in total]


def truncate(values: list[float], dimensions: int) -> list[float]:
    if dimensions == len(values):
        return values
    head = values[:dimensions]
    norm = math.sqrt(sum(x * x for x in head)) or 1.0
    return [x / norm for x in head]


def encode(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def embeddings_body(
    *,
    request_id: str,
    created: int,
    model: str,
    vectors: Sequence[list[float] | str],
    prompt_tokens: int,
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "list",
        "created": created,
        "model": model,
        "data": [
            {"index": i, "object": "embedding", "embedding": v} for i, v in enumerate(vectors)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens,
            "completion_tokens": 0,
            "prompt_tokens_details": None,
        },
    }
