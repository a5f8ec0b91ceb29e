"""Errors the gateway answers with, always in OpenAI's shape (pure: no I/O).

    GatewayError                  status, type, code, optional Retry-After
    +-- BadRequestError                400 invalid_request_error (malformed JSON, wrong types)
    +-- UnauthorizedError              401 authentication_error
    +-- ModelNotFoundError             404 invalid_request_error / model_not_found
    +-- RequestTooLargeError           413 invalid_request_error / request_too_large
    +-- OverCapacityError              429 rate_limit_error (+ Retry-After)
    +-- NoReadyReplicaError            503 server_error / no_ready_replica (+ Retry-After)
    +-- UpstreamTimeoutError           504 server_error / upstream_timeout
    +-- UpstreamUnavailableError       502 server_error / upstream_unavailable

The body is `{"error": {"message", "type", "param", "code"}}`: the OpenAI SDK maps the
status to its exception classes (BadRequestError, NotFoundError, RateLimitError, ...).
Every `type` is one of OpenAI's; an engine's own errors are translated (engine_errors.py).
"""

from __future__ import annotations

import math

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after_s = retry_after_s

    def body(self) -> bytes:
        return error_body(self.message, self.type, param=self.param, code=self.code)

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after_s is None:
            return []
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after_s))).encode())]


class BadRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class UnauthorizedError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist.", param="model")


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeoutError(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class ConflictError(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class RequestTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class HeaderTooLargeError(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "request_header_too_large"


class OverCapacityError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamUnavailableError(GatewayError):
    status = 502
    type = "server_error"
    code = "upstream_unavailable"


class NoReadyReplicaError(GatewayError):
    status = 503
    type = "server_error"
    code = "no_ready_replica"


class UpstreamTimeoutError(GatewayError):
    status = 504
    type = "server_error"
    code = "upstream_timeout"


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def type_for_status(status: int) -> str:
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def sse_error_event(message: str, type_: str = "server_error", code: str | None = None) -> bytes:
    """The final event of a stream that broke after its first byte (the SDK raises APIError)."""
    return b"data: " + error_body(message, type_, code=code) + b"\n\n"
