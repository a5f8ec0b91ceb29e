"""The error answers of the OpenAPI schema: OpenAI's shape for every status (pure)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from data_plane.gateway.openapi.openai_bodies import ErrorResponse

Responses = dict[int | str, dict[str, Any]]

ERROR_DESCRIPTIONS = {
    400: "Malformed request: not JSON, a missing or wrongly typed field, an invalid value.",
    401: "No API key, or an unknown one (when keys are configured).",
    403: "The key may not use this model or adapter.",
    404: "Unknown model, adapter or path; the adapter API without a store.",
    408: "The request body was not received in time.",
    413: "The request body is larger than the gateway accepts.",
    409: "The name is taken: an adapter may not be named like a model.",
    422: "The engine refused the request's values, or the adapter source is not allowed.",
    429: "Over capacity or over the tenant's quota; retry after `Retry-After` seconds.",
    502: "The engine or the adapter store could not be reached, or answered malformed data.",
    503: "No replica is ready (starting, scaled to zero); retry after `Retry-After` seconds.",
    504: "The engine did not answer in time.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def error_responses(*statuses: int) -> Responses:
    """FastAPI `responses=` entries: OpenAI's error body for each of `statuses`."""
    out: Responses = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def error_objects(statuses: tuple[int, ...], ref: str) -> dict[str, Any]:
    """Plain OpenAPI response objects (for routes FastAPI does not serve) pointing at `ref`."""
    out: dict[str, Any] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[str(status)] = entry
    return out


def answer(model: type[BaseModel], description: str, status: int = 200) -> Responses:
    """A FastAPI `responses=` entry for a success: `model` as the JSON body."""
    return {status: {"model": model, "description": description}}
