"""OpenAI's request and response bodies, as pydantic models, for the OpenAPI schema only.

The hot path never validates with these (it reads a few fields by hand, `request_fields.py`,
and passes the body through): they tell clients and schema-driven fuzzers what the
gateway accepts and answers. Permissive on purpose: every model allows extra fields, as
vLLM accepts more than OpenAI documents and answers with more.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """A body that may carry fields beyond those listed (passed through unread)."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)


# --- errors -----------------------------------------------------------------------------


class ErrorDetail(Open):
    message: str
    type: str
    param: str | None
    code: str | int | None
    """A string from the gateway (e.g. `model_not_found`); vLLM puts the HTTP status here."""


class ErrorResponse(Open):
    """OpenAI's error shape, for every error status, from the gateway or the engine."""

    error: ErrorDetail


# --- requests ---------------------------------------------------------------------------


class StreamOptions(Open):
    include_usage: bool | None = None
    """Send a last chunk with the token counts of the whole request."""


class ChatMessage(Open):
    role: str
    """`system`, `user`, `assistant`, `tool`, or what the model's chat template knows."""
    content: str | list[dict[str, Any]] | None = None
    """Text, or an array of content parts (`{"type": "text", "text": ...}`)."""


class SamplingFields(Open):
    """What both endpoints share; the engine checks the values (a 400 when out of range)."""

    model: str = Field(min_length=1)
    """A base model or an adapter id, as `GET /v1/models` lists them."""
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = 1
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None


class ChatCompletionRequest(SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "llama", "messages": [{"role": "user", "content": "Hello!"}]},
                {
                    "model": "sql-lora",
                    "messages": [{"role": "user", "content": "Count the users."}],
                    "max_tokens": 16,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ]
        }
    )

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None


class CompletionRequest(SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "llama", "prompt": "The capital of France is", "max_tokens": 8},
                {"model": "llama", "prompt": [1, 2, 3], "stream": True},
            ]
        }
    )

    prompt: str | list[str] | list[int] | list[list[int]]
    """Text, texts, token ids, or arrays of token ids."""


# --- responses --------------------------------------------------------------------------


class Usage(Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(Open):
    role: str
    content: str | None = None


class ChatChoice(Open):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None


class ChatCompletion(Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


class ChunkDelta(Open):
    role: str | None = None
    content: str | None = None


class ChatChunkChoice(Open):
    index: int
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(Open):
    """One event of a streamed chat completion; the last one (with `include_usage`) has no
    choices and the usage of the whole request."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(Open):
    index: int
    text: str
    finish_reason: str | None = None


class Completion(Open):
    """A text completion; each event of a stream has this shape too (one token's text)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


# --- the control routes -----------------------------------------------------------------


class ModelCard(Open):
    """A base model (`parent` null) or an adapter (`parent`: its base model), as vLLM lists."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    root: str
    parent: str | None


class ModelList(Open):
    object: Literal["list"]
    data: list[ModelCard]


class Status(Open):
    status: str
    """`ok` (`/healthz`) or `ready` (`/readyz`)."""
