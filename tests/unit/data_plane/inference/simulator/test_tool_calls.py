"""tool_calls.py: which requests force a call, how vLLM refuses bad ones, and that the
generated arguments validate against the tool's schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from data_plane.inference.simulator.protocol.errors import ApiError
from data_plane.inference.simulator.tool_calls import (
    ForcedTool,
    argument_delta,
    argument_pieces,
    arguments,
    check_tools,
    first_delta,
)

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 12, "maxLength": 20},
        "unit": {"enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "alerts": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "note": {"type": ["string", "null"]}},
            "required": ["lat", "note"],
            "additionalProperties": False,
        },
        "kind": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "version": {"const": 2},
    },
    "required": ["city", "unit", "days", "ratio", "alerts", "tags", "where", "kind", "version"],
    "additionalProperties": False,
}


def _tools(*names: str, parameters: Any = None) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": name, "parameters": parameters or WEATHER}}
        for name in names
    ]


def test_required_forces_the_first_tool_and_finishes_with_tool_calls() -> None:
    forced = check_tools({"tools": _tools("a", "b"), "tool_choice": "required"})
    assert forced == ForcedTool("a", WEATHER, "tool_calls")


def test_a_named_tool_is_forced_and_finishes_with_stop() -> None:
    body = {
        "tools": _tools("a", "b"),
        "tool_choice": {"type": "function", "function": {"name": "b"}},
    }
    assert check_tools(body) == ForcedTool("b", WEATHER, "stop")


@pytest.mark.parametrize(
    "body",
    [{}, {"tools": _tools("a")}, {"tools": _tools("a"), "tool_choice": "auto"},
     {"tools": _tools("a"), "tool_choice": "none"}, {"tool_choice": "none"}],
)  # fmt: skip
def test_auto_none_and_no_tools_answer_text(body: dict[str, Any]) -> None:
    assert check_tools(body) is None


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"tools": []}, "tools", "must not be an empty array"),
        ({"tool_choice": "required"}, "tool_choice", "`tools` must be set"),
        ({"tools": _tools("a"), "tool_choice": "always"}, "tool_choice", "Invalid value"),
        ({"tools": _tools("a"), "tool_choice": {"type": "function"}},
         "tool_choice.function", "Invalid value for `function`"),
        ({"tools": _tools("a"), "tool_choice": {"type": "function", "function": {}}},
         "tool_choice.function.name", "Expected field `name`"),
        ({"tools": _tools("a"), "tool_choice": {"type": "function", "function": {"name": ""}}},
         "tool_choice.function.name", "Invalid `name`"),
        ({"tools": _tools("a"), "tool_choice": {"type": "function", "function": {"name": "z"}}},
         "tool_choice", "does not match any"),
        ({"tools": [{"type": "function"}]}, "body.tools.0.function", "Field required"),
        ({"tools": [{"type": "function", "function": {}}]},
         "body.tools.0.function.name", "Field required"),
        ({"tools": [{"type": "function", "function": {"name": 3}}]},
         "body.tools.0.function.name", "valid string"),
        ({"tools": "f"}, "body.tools", "valid list"),
    ],
)  # fmt: skip
def test_refusals_name_the_parameter(body: dict[str, Any], param: str, says: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_tools(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert says in caught.value.message


@pytest.mark.parametrize("seed", [None, 0, 1, 7, 12345])
@pytest.mark.parametrize("index", [0, 1])
def test_arguments_validate_against_the_schema(seed: int | None, index: int) -> None:
    text = arguments(ForcedTool("w", WEATHER, "stop"), seed, index)
    jsonschema.validate(json.loads(text), WEATHER)


def test_arguments_follow_the_seed_and_choice() -> None:
    tool = ForcedTool("w", WEATHER, "stop")
    assert arguments(tool, 3, 0) == arguments(tool, 3, 0)
    drawn = {arguments(tool, seed, index) for seed in range(5) for index in range(2)}
    assert len(drawn) > 1


def test_a_tool_without_parameters_gets_an_empty_object() -> None:
    assert arguments(ForcedTool("f", {}, "tool_calls"), 1, 0) == "{}"


@pytest.mark.parametrize(("text", "tokens"), [("abcdefg", 3), ("ab", 5), ("", 2), ("xyz", 1)])
def test_pieces_add_up_to_the_arguments(text: str, tokens: int) -> None:
    pieces = argument_pieces(text, tokens)
    assert "".join(pieces) == text
    assert 1 <= len(pieces) <= max(tokens, 1)


def test_the_opening_delta_names_the_call_and_later_ones_add_arguments() -> None:
    opening = first_delta("chatcmpl-tool-1", "f")
    assert opening == {
        "content": None,
        "tool_calls": [
            {"id": "chatcmpl-tool-1", "type": "function", "index": 0, "function": {"name": "f"}}
        ],
    }
    later = argument_delta("x")
    assert later == {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": "x"}}]}
