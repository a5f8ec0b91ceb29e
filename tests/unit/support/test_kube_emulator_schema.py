"""The emulator's schema checks word their failures as the API server does.

The expected strings are those of the API server's own test table
(k8s.io/apiextensions-apiserver/pkg/apiserver/validation, TestValidateCustomResource) and of
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
(pruning, defaulting, validation rules, ratcheting).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kube_emulator.cel_rules import check_rules, compile_errors
from tests.support.kube_emulator.schema import apply_defaults, prune, ratchet, validate


def obj(field: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"field": field}}


def texts(schema: dict[str, Any], value: Any) -> list[str]:
    return [c.text() for c in validate(schema, value)]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param({"type": "object"}, "foo",
                     'field: Invalid value: "string": field in body must be of type object: "string"',
                     id="type"),
        pytest.param({"type": "object"}, None,
                     'field: Invalid value: "null": field in body must be of type object: "null"',
                     id="null-not-nullable"),
        pytest.param({"x-kubernetes-int-or-string": True}, 1.2,
                     'field: Invalid value: "number": field in body must be of type'
                     ' integer,string: "number"', id="int-or-string"),
        pytest.param({"type": "string", "maxLength": 2}, "abc",
                     "field: Too long: may not be more than 2 bytes", id="maxLength"),
        pytest.param({"type": "array", "maxItems": 2}, ["a", "b", "c"],
                     "field: Too many: 3: must have at most 2 items", id="maxItems"),
        pytest.param({"type": "object", "maxProperties": 2}, {"a": 1, "b": 2, "c": 3},
                     "field: Too many: 3: must have at most 2 items", id="maxProperties"),
        pytest.param({"type": "string", "pattern": "^a+$"}, "b",
                     "field: Invalid value: \"b\": field in body should match '^a+$'",
                     id="pattern"),
        pytest.param({"type": "integer", "minimum": 0}, -1,
                     "field: Invalid value: -1: field in body should be greater than or equal to 0",
                     id="minimum"),
        pytest.param({"type": "number", "minimum": 0, "exclusiveMinimum": True}, 0,
                     "field: Invalid value: 0: field in body should be greater than 0",
                     id="exclusiveMinimum"),
    ],
)  # fmt: skip
def test_messages(field: dict[str, Any], value: Any, expected: str) -> None:
    assert texts(obj(field), {"field": value}) == [expected]


def test_nullable_and_int_or_string_accept_their_values() -> None:
    assert texts(obj({"type": "object", "nullable": True}), {"field": None}) == []
    for value in (42, "foo"):
        assert texts(obj({"x-kubernetes-int-or-string": True}), {"field": value}) == []


def test_required_and_enum_with_a_wrong_type_report_each_failure() -> None:
    schema = obj(
        {
            "type": "object",
            "required": ["nestedint", "nestedstring"],
            "properties": {
                "nestedint": {"type": "integer", "enum": [1, 2]},
                "nestedstring": {"type": "string", "enum": ["a", "b"]},
            },
        }
    )
    assert texts(schema, {"field": {}}) == [
        "field.nestedint: Required value",
        "field.nestedstring: Required value",
    ]
    assert texts(schema, {"field": {"nestedint": "x", "nestedstring": True}}) == [
        'field.nestedint: Invalid value: "string": field.nestedint in body must be of type'
        ' integer: "string"',
        'field.nestedint: Unsupported value: "x": supported values: 1, 2',
        'field.nestedstring: Invalid value: "boolean": field.nestedstring in body must be of'
        ' type string: "boolean"',
        'field.nestedstring: Unsupported value: true: supported values: "a", "b"',
    ]


def test_pruning_keeps_declared_and_preserved_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    doc = {"kind": "K", "metadata": {"x": 1}, "spec": {"a": "1", "b": 2, "free": {"c": 3}}, "z": 1}
    pruned, unknown = prune(schema, doc)
    assert pruned == {"kind": "K", "metadata": {"x": 1}, "spec": {"a": "1", "free": {"c": 3}}}
    assert unknown == ["spec.b", "z"]


def test_defaults_fill_present_objects_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 1},
            "inner": {"type": "object", "properties": {"b": {"type": "string", "default": "x"}}},
        },
    }
    assert apply_defaults(schema, {}) == {"a": 1}
    assert apply_defaults(schema, {"inner": {}}) == {"a": 1, "inner": {"b": "x"}}


def test_rule_messages_and_transition_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "field": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf"}],
            },
            "list": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "string"}},
                    "x-kubernetes-validations": [
                        {"rule": "self.x == 'x'", "messageExpression": "'got ' + self.x"}
                    ],
                },
            },
        },
    }
    assert check_rules(schema, {"field": "y"}) == []  # no old object: not checked
    failed = check_rules(schema, {"field": "y"}, {"field": "x"})
    assert [c.text() for c in failed] == [
        'field: Invalid value: "string": failed rule: self == oldSelf'
    ]
    listed = check_rules(schema, {"list": [{"x": "x"}, {"x": "y"}]})
    assert [c.text() for c in listed] == ['list[1]: Invalid value: "object": got y']


def test_a_rule_that_does_not_compile_is_reported() -> None:
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "!has(self)"}]}
    (cause,) = compile_errors(schema, "spec.versions[0].schema.openAPIV3Schema")
    assert cause.field == "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule"
    assert "compilation failed" in cause.message


def test_ratcheting_lets_unchanged_invalid_fields_through() -> None:
    schema = obj({"type": "integer", "minimum": 1})
    before, after = {"field": 0}, {"field": 0, "other": 1}
    assert ratchet(validate(schema, after), before, after) == []
    changed = {"field": -1}
    assert len(ratchet(validate(schema, changed), before, changed)) == 1
