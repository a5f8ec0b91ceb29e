"""Tool calls as vLLM 0.32 answers them when the tool is forced (pure).

With `tool_choice` "required" or a named tool, vLLM constrains decoding to the tool-call
format, so the answer is always a call: an assistant message with `content` "" and one
`tool_calls` entry (id `chatcmpl-tool-<16 hex>`, type `function`, the name and `arguments`,
a JSON string in the tool's `parameters` schema). `finish_reason` is "tool_calls" for
"required" and "stop" for a named tool (vLLM follows OpenAI there). "auto" and "none"
answer text: there is no model here to decide whether to call. Streamed, as vLLM streams
through the `hermes` parser of the embedded default: the first delta of the call carries
id, type and name (no arguments), later deltas only argument pieces (`content` null beside
them), and the finish reason rides on the last chunk.

The argument values are drawn per JSON-schema type from the request's `seed` (and the
choice index), so the same request gets the same call. `check_tools` refuses what vLLM's
`check_tool_usage` refuses, with its messages.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data_plane.inference.simulator.protocol.errors import ApiError, schema_error

_USAGE = 'Correct usage: `{"type": "function", "function": {"name": "my_function"}}`'
_WORDS = ("paris", "blue", "seven", "river", "north", "lamp", "quiet", "amber")


@dataclass(frozen=True)
class ForcedTool:
    """The tool an answer must call, and how vLLM ends such an answer."""

    name: str
    parameters: Mapping[str, Any]
    finish_reason: str
    """"tool_calls" for `tool_choice` "required", "stop" for a named tool."""


def _invalid(message: str, param: str) -> ApiError:
    return ApiError(f"{message} (parameter={param})", param=param)


def _tool_definitions(tools: Any) -> list[Mapping[str, Any]]:
    """The `function` of each tool, schema-checked as vLLM's request model checks them."""
    if not isinstance(tools, list):
        raise schema_error("list_type", "tools", "Input should be a valid list", tools)
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise schema_error(
                "model_type", f"tools.{i}", "Input should be a valid dictionary", tool
            )
        function = tool.get("function")
        if not isinstance(function, Mapping):
            if "function" not in tool:
                raise schema_error("missing", f"tools.{i}.function", "Field required", tool)
            raise schema_error(
                "model_type", f"tools.{i}.function", "Input should be a valid dictionary", function
            )
        name = function.get("name")
        if not isinstance(name, str):
            if "name" not in function:
                raise schema_error(
                    "missing", f"tools.{i}.function.name", "Field required", function
                )
            raise schema_error(
                "string_type", f"tools.{i}.function.name", "Input should be a valid string", name
            )
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise schema_error(
                "dict_type",
                f"tools.{i}.function.parameters",
                "Input should be a valid dictionary",
                parameters,
            )
        functions.append(function)
    return functions


def check_tools(body: Mapping[str, Any]) -> ForcedTool | None:
    """vLLM's checks of `tools` / `tool_choice`; the forced tool, or None (text answer)."""
    if body.get("tools") == []:
        raise _invalid(
            "`tools` must not be an empty array. "
            "Either provide at least one tool or omit the field entirely.",
            "tools",
        )
    tools = body.get("tools")
    functions = _tool_definitions(tools) if tools is not None else []
    choice = body.get("tool_choice", "auto" if functions else None)
    if choice is None or choice == "none":
        return None
    if tools is None:
        raise _invalid("When using `tool_choice`, `tools` must be set.", "tool_choice")
    if choice == "auto":
        return None
    if choice == "required":
        first = functions[0]
        return ForcedTool(first["name"], first.get("parameters") or {}, "tool_calls")
    if not isinstance(choice, Mapping):
        raise _invalid(
            f"Invalid value for `tool_choice`: {choice}! "
            'Only named tools, "none", "auto" or "required" are supported.',
            "tool_choice",
        )
    return _named(choice, functions)


def _named(choice: Mapping[str, Any], functions: list[Mapping[str, Any]]) -> ForcedTool:
    function = choice.get("function")
    if not isinstance(function, Mapping):
        raise _invalid(
            f"Invalid value for `function`: `{function}` in `tool_choice`! {_USAGE}",
            "tool_choice.function",
        )
    if "name" not in function:
        raise _invalid(
            f"Expected field `name` in `function` in `tool_choice`! {_USAGE}",
            "tool_choice.function.name",
        )
    name = function["name"]
    if not isinstance(name, str) or not name:
        raise _invalid(
            f"Invalid `name` in `function`: `{name}` in `tool_choice`! {_USAGE}",
            "tool_choice.function.name",
        )
    for definition in functions:
        if definition["name"] == name:
            return ForcedTool(name, definition.get("parameters") or {}, "stop")
    raise _invalid(
        "The tool specified in `tool_choice` does not match any of the specified `tools`",
        "tool_choice",
    )


# -- arguments -------------------------------------------------------------------------


def arguments(tool: ForcedTool, seed: int | None, index: int) -> str:
    """The call's `arguments`: a JSON object valid against the tool's `parameters`."""
    rng = random.Random(f"{seed or 0}:{index}:{tool.name}")  # noqa: S311 (a simulation)
    value = _value(tool.parameters or {"type": "object"}, rng)
    if not isinstance(value, dict):
        value = {}
    return json.dumps(value, ensure_ascii=False)


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0]
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _value(schema: Mapping[str, Any], rng: random.Random) -> Any:
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return _value(options[0], rng)
    kind = _type_of(schema)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _value(sub, rng) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        low = int(schema.get("minItems", 1))
        high = max(int(schema.get("maxItems", max(low, 2))), low)
        return [_value(items or {}, rng) for _ in range(rng.randint(low, high))]
    if kind in ("integer", "number"):
        return _number(schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _number(schema: Mapping[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        low += 1 if integer else 1e-3
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        high -= 1 if integer else 1e-3
    if integer:
        return rng.randint(int(low), max(int(high), int(low)))
    return round(rng.uniform(float(low), max(float(high), float(low))), 3)


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    text = rng.choice(_WORDS)
    shortest = int(schema.get("minLength", 0))
    while len(text) < shortest:
        text += rng.choice(_WORDS)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def argument_pieces(text: str, tokens: int) -> list[str]:
    """`text` cut into `tokens` (at least one) consecutive pieces, as streamed deltas."""
    count = max(min(tokens, len(text)), 1)
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def tool_call(call_id: str, name: str, args: str) -> dict[str, Any]:
    """One entry of a message's `tool_calls`."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def first_delta(call_id: str, name: str) -> dict[str, Any]:
    """The delta that opens a streamed call: its id and name, no arguments yet."""
    call = {"id": call_id, "type": "function", "index": 0, "function": {"name": name}}
    return {"content": None, "tool_calls": [call]}


def argument_delta(args: str) -> dict[str, Any]:
    """A later delta of a streamed call: only more of the arguments."""
    return {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": args}}]}
