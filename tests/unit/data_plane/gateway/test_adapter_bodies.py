"""The adapter API's request forms and how their errors name fields (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from data_plane.gateway.adapters.bodies import (
    AdapterBody,
    AdapterDocumentBody,
    FlatAdapterBody,
    NamedAdapterBody,
    as_document,
    body_error,
)

PUT_BODY: TypeAdapter[Any] = TypeAdapter(AdapterBody)
POST_BODY: TypeAdapter[Any] = TypeAdapter(NamedAdapterBody)


def test_the_flat_form_becomes_a_document_with_only_what_was_sent() -> None:
    body = PUT_BODY.validate_python({"baseModel": "llama", "source": "a/b"})
    assert isinstance(body, FlatAdapterBody)
    assert as_document(body, "chat") == {
        "metadata": {"name": "chat"},
        "spec": {"baseModel": "llama", "source": "a/b"},
    }


def test_the_flat_form_accepts_base_model_in_snake_case() -> None:
    body = POST_BODY.validate_python({"name": "x", "base_model": "llama", "source": "/a"})
    assert as_document(body, None)["spec"] == {"baseModel": "llama", "source": "/a"}


def test_a_document_keeps_its_name_and_ignores_a_status() -> None:
    body = PUT_BODY.validate_python(
        {"metadata": {"name": "x"}, "spec": {"baseModel": "l", "source": "/a"}, "status": 3}
    )
    assert isinstance(body, AdapterDocumentBody)
    assert as_document(body, "y") == {
        "metadata": {"name": "x"},
        "spec": {"baseModel": "l", "source": "/a"},
    }


def _first_error(adapter: TypeAdapter[Any], value: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(value)
    return [{**e, "loc": ("body", *e["loc"])} for e in info.value.errors()]


@pytest.mark.parametrize(
    ("value", "param"),
    [
        pytest.param({"metadata": "x", "spec": {}}, "metadata", id="document-metadata"),
        pytest.param({"name": "x", "source": "/a"}, "spec.baseModel", id="flat-missing-base"),
        pytest.param(
            {"name": "A_B", "baseModel": "l", "source": "/a"}, "metadata.name", id="flat-bad-name"
        ),
        pytest.param(
            {"name": "x", "baseModel": "l", "source": "ftp://a"}, "spec.source", id="flat-scheme"
        ),
        pytest.param({"baseModel": "l", "source": "/a"}, "metadata.name", id="post-needs-a-name"),
        pytest.param([1], None, id="not-an-object"),
    ],
)
def test_errors_name_the_field_as_the_document_does(value: Any, param: str | None) -> None:
    error = body_error(_first_error(POST_BODY, value))
    assert error.status == 400
    assert error.param == param


def test_invalid_json_says_so() -> None:
    errors = [{"type": "json_invalid", "loc": ("body", 1), "ctx": {"error": "Expecting value"}}]
    error = body_error(errors)
    assert error.message == "The request body is not valid JSON: Expecting value"
    assert error.param is None
