"""The Responses and embeddings bodies, as pydantic models, for the OpenAPI schema only.

As in `openai_bodies`, permissive: the gateway passes these bodies through unread except
`model`, `stream`, `input` (the start of the prompt) and `max_output_tokens`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from data_plane.gateway.openapi.openai_bodies import Open


class InputMessage(Open):
    role: str
    """`user`, `assistant`, `system` or `developer`."""
    content: str | list[dict[str, Any]]
    """Text, or content parts (`{"type": "input_text", "text": ...}`)."""


class ResponsesRequest(Open):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "llama", "input": "Hello!", "max_output_tokens": 16},
                {
                    "model": "llama",
                    "instructions": "Answer in one word.",
                    "input": [{"role": "user", "content": "Capital of France?"}],
                    "stream": True,
                },
            ]
        }
    )

    model: str = Field(min_length=1)
    """A base model or an adapter id, as `GET /v1/models` lists them."""
    input: str | list[InputMessage]
    """The conversation: text, or message items (sent whole: nothing is stored)."""
    instructions: str | None = None
    """The system message."""
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    stream: bool | None = False
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    previous_response_id: None = None
    """Refused (400): the gateway stores no responses."""
    background: Literal[False] | None = None
    """Refused when true (400): the gateway stores no responses."""


class ResponseUsage(Open):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class ResponseObject(Open):
    """A response; in a stream, `response.created` and `response.completed` carry one."""

    id: str
    object: Literal["response"]
    created_at: int
    model: str
    status: str
    """`completed`, or `incomplete` when `max_output_tokens` cut it short."""
    output: list[dict[str, Any]]
    usage: ResponseUsage | None = None


class ResponseEvent(Open):
    """One event of a streamed response (`response.created`, `response.output_text.delta`,
    ..., `response.completed`); the SSE `event:` line repeats its `type`."""

    type: str
    sequence_number: int


class EmbeddingRequest(Open):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "embedder", "input": ["one", "two"]}]}
    )

    model: str = Field(min_length=1)
    """An embedding model (one served by a pooling engine)."""
    input: str | list[str] | list[int] | list[list[int]]
    """Text, texts, token ids, or arrays of token ids."""
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None


class Embedding(Open):
    index: int
    object: Literal["embedding"]
    embedding: list[float] | str
    """Numbers, or base64 of little-endian float32 (`encoding_format: base64`)."""


class EmbeddingUsage(Open):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Open):
    object: Literal["list"]
    model: str
    data: list[Embedding]
    usage: EmbeddingUsage
