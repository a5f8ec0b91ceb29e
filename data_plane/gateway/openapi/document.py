"""The OpenAPI document: FastAPI's, plus the proxy routes it does not serve (pure).

`/v1/chat/completions`, `/v1/completions`, `/v1/responses` and `/v1/embeddings` are served
by the gateway's protocol, or by `HotPaths` in front of FastAPI over ASGI, so FastAPI knows
nothing of them: their operations are written here from the models of
`openai_bodies`. FastAPI's own 422 answers are replaced by what the gateway really sends
for a malformed request: a 400 in OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from data_plane.gateway.openapi.input_bodies import (
    EmbeddingList,
    EmbeddingRequest,
    ResponseEvent,
    ResponseObject,
    ResponsesRequest,
)
from data_plane.gateway.openapi.openai_bodies import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ErrorResponse,
)
from data_plane.gateway.openapi.responses import ERROR_DESCRIPTIONS, error_objects

_REF = "#/components/schemas/{model}"
_PROXY_ERRORS = (400, 401, 403, 404, 408, 413, 422, 429, 502, 503, 504)


def _stream(chunk: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """Server-sent events, each described on its own (OpenAPI 3.1): `data` is a chunk, an
    error (a stream broken after its first byte) or the final `[DONE]`."""
    json_data = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"anyOf": [chunk, error]},
    }
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"anyOf": [{"const": "[DONE]"}, json_data]}},
    }
    return {"schema": event}


_SECURITY = {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key."}}


def _proxy_operation(
    summary: str,
    request: dict[str, Any],
    answer: dict[str, Any],
    chunk: dict[str, Any],
    error: dict[str, Any],
) -> dict[str, Any]:
    return {
        "tags": ["openai"],
        "summary": summary,
        "description": "Passed to an engine unchanged (extra fields included); the gateway "
        "reads only `model`, `stream`, `stream_options` and the start of the prompt.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "The answer; a stream of chunks when `stream` is true.",
                "content": {
                    "application/json": {"schema": answer},
                    "text/event-stream": _stream(chunk, error),
                },
            },
            **error_objects(_PROXY_ERRORS, error["$ref"]),
        },
        "security": [{"bearer": []}, {}],
    }


def _json_operation(
    summary: str, request: dict[str, Any], answer: dict[str, Any], error: dict[str, Any]
) -> dict[str, Any]:
    operation = _proxy_operation(summary, request, answer, answer, error)
    operation["responses"]["200"] = {
        "description": "The answer.",
        "content": {"application/json": {"schema": answer}},
    }
    return operation


def proxy_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """The proxy routes' path items, and the component schemas they refer to."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (ChatCompletionRequest, "validation"),
        (CompletionRequest, "validation"),
        (ChatCompletion, "serialization"),
        (Completion, "serialization"),
        (ChatCompletionChunk, "serialization"),
        (ErrorResponse, "serialization"),
        (ResponsesRequest, "validation"),
        (ResponseObject, "serialization"),
        (ResponseEvent, "serialization"),
        (EmbeddingRequest, "validation"),
        (EmbeddingList, "serialization"),
    ]
    refs, defs = models_json_schema(models, ref_template=_REF)
    ref = {model: refs[(model, mode)] for model, mode in models}
    error = ref[ErrorResponse]
    paths = {
        "/v1/chat/completions": {
            "post": _proxy_operation(
                "Chat completion",
                ref[ChatCompletionRequest],
                ref[ChatCompletion],
                ref[ChatCompletionChunk],
                error,
            )
            | {"operationId": "create_chat_completion"}
        },
        "/v1/completions": {
            "post": _proxy_operation(
                "Text completion", ref[CompletionRequest], ref[Completion], ref[Completion], error
            )
            | {"operationId": "create_completion"}
        },
        "/v1/responses": {
            "post": _proxy_operation(
                "Response (Responses API)",
                ref[ResponsesRequest],
                ref[ResponseObject],
                ref[ResponseEvent],
                error,
            )
            | {"operationId": "create_response"}
        },
        "/v1/embeddings": {
            "post": _json_operation("Embeddings", ref[EmbeddingRequest], ref[EmbeddingList], error)
            | {"operationId": "create_embeddings"}
        },
    }
    return paths, defs.get("$defs", {})


def _bad_request_for_422(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 HTTPValidationError; the gateway answers those with a 400."""
    error = {"$ref": _REF.format(model="ErrorResponse")}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            documented = str(responses.get("422", {}).get("content", {}))
            if "HTTPValidationError" in documented:
                del responses["422"]
                responses.setdefault("400", error_objects((400,), error["$ref"])["400"])
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def build_schema(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    paths, defs = proxy_paths()
    schema["paths"] = paths | schema.get("paths", {})
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, definition in defs.items():
        schemas.setdefault(name, definition)
    schemas.setdefault("ErrorResponse", defs["ErrorResponse"])
    _bad_request_for_422(schema)
    components["securitySchemes"] = _SECURITY
    return schema


def install_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Make `app.openapi()` (and `GET /openapi.json`) answer the whole schema, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return openapi


__all__ = ["ERROR_DESCRIPTIONS", "build_schema", "install_openapi", "proxy_paths"]
