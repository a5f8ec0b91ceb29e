"""Readers of one request field each, coercing and refusing as vLLM's pydantic models do.

Each returns the field's value (None or the default when it is absent) or raises the
`schema_error` vLLM answers with. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_plane.inference.simulator.protocol.errors import ApiError, schema_error


def int_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise schema_error(
                "int_parsing",
                name,
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            ) from None
    if isinstance(value, float):
        raise schema_error(
            "int_from_float",
            name,
            "Input should be a valid integer, got a number with a fractional part",
            value,
        )
    raise schema_error("int_type", name, "Input should be a valid integer", value)


def float_field(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise schema_error(
                "float_parsing",
                name,
                "Input should be a valid number, unable to parse string as a number",
                value,
            ) from None
    raise schema_error("float_type", name, "Input should be a valid number", value)


def bool_field(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise schema_error("bool_parsing", name, "Input should be a valid boolean", value)


def str_field(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise schema_error("string_type", name, "Input should be a valid string", value)


def stop_field(body: Mapping[str, Any]) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise schema_error("list_type", "stop", "Input should be a valid list", value)


def stream_options(body: Mapping[str, Any], stream: bool) -> tuple[bool, bool]:
    options = body.get("stream_options")
    if options is None:
        return False, False
    if not isinstance(options, Mapping):
        raise schema_error(
            "model_type", "stream_options", "Input should be a valid dictionary", options
        )
    if not stream:
        raise ApiError(
            "Stream options can only be defined when `stream=True`.", param="stream_options"
        )
    return (
        bool_field(options, "include_usage", False),
        bool_field(options, "continuous_usage_stats", False),
    )


def is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    )
