"""An engine's error answer, in OpenAI's shape (pure: no I/O).

vLLM answers `{"error": {"message", "type": "BadRequestError", "param", "code": 400}}`
(its exception class as `type`, the status as an integer `code`), older vLLM
`{"object": "error", ...}` with the same fields, FastAPI `{"detail": ...}`, and a proxy in
between anything at all. The OpenAI SDK, and the gateway's own errors, use OpenAI's types
(`invalid_request_error`, ...) and a string or null `code`. `as_openai_error` rewrites the
first into the second; the table is docs/openai-compatibility.md's "Errors" section:

    engine type (status)                     type                    code
    BadRequestError, Bad Request (400)       invalid_request_error   see _CODES, else null
    UnprocessableEntityError (422)           invalid_request_error   null
    NotFoundError (404)                      invalid_request_error   model_not_found / not_found
    {"detail": "Not Found"} (404)            invalid_request_error   unsupported_endpoint
    401 / 403                                authentication_error / permission_error
    429                                      rate_limit_error        rate_limit_exceeded
    NotImplementedError (501)                server_error            not_implemented
    InternalServerError, others (5xx)        server_error            null

`param` is the engine's, without pydantic's `body.` prefix.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from data_plane.gateway.errors import error_body

OPENAI_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "rate_limit_error",
    "server_error",
})  # fmt: skip
"""The error types a client of the gateway sees for an engine's error."""

_CODES = (
    (re.compile(r"maximum context length", re.I), "context_length_exceeded"),
    (re.compile(r"cannot be greater than max_model_len"), "context_length_exceeded"),
    (re.compile(r"does not exist", re.I), "model_not_found"),
    (re.compile(r"\(parameter=\w+, value="), "invalid_value"),
    (re.compile(r"validation error"), "invalid_type"),
)
"""An engine message's pattern, and the code it gets (the first that matches)."""


def openai_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_code(status: int, message: str, param: str | None, engine_code: Any) -> str | None:
    if isinstance(engine_code, str) and engine_code and not engine_code.isdigit():
        return engine_code  # already a string code (OpenAI's or the gateway's)
    if status == 429:
        return "rate_limit_exceeded"
    if status == 501:
        return "not_implemented"
    if status >= 500:
        return None
    for pattern, code in _CODES:
        if pattern.search(message):
            return code
    if status == 404:
        return "model_not_found" if param == "model" else "not_found"
    return None


def _param(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.removeprefix("body.") or None


def as_openai_error(status: int, body: bytes, path: str = "") -> bytes:
    """`body` (an engine's error answer with `status`) in OpenAI's shape; `path` is the
    engine path it answered, for the message of a 404 on a route the engine lacks."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    fields: dict[str, Any] | None = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            fields = inner
        elif isinstance(parsed.get("message"), str):
            fields = parsed
        elif isinstance(parsed.get("detail"), str):
            if status == 404 and parsed["detail"] == "Not Found":
                where = f" {path}" if path else " this endpoint"
                message = f"The model's engine does not serve{where} (e.g. embeddings from a"
                message += " generative model, or chat from an embedding model)."
                return error_body(message, openai_type(404), code="unsupported_endpoint")
            fields = {"message": parsed["detail"]}
    if fields is None:
        text = body.decode("utf-8", "replace").strip()[:500] or f"upstream answered {status}"
        return error_body(text, openai_type(status))
    message = fields["message"]
    engine_type = fields.get("type")
    if isinstance(engine_type, str) and engine_type in OPENAI_TYPES:
        type_ = engine_type  # already OpenAI's (a gateway in front of a gateway)
    else:
        type_ = openai_type(status)
    param = _param(fields.get("param"))
    code = openai_code(status, message, param, fields.get("code"))
    return error_body(message, type_, param=param, code=code)
