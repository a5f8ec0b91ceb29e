"""The OpenAPI document describes every route the gateway serves, with its real bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from data_plane.gateway.__main__ import build
from data_plane.gateway.settings import GatewaySettings


@pytest.fixture(scope="module")
def app() -> Any:
    return build(GatewaySettings(discovery="local")).app


@pytest.fixture(scope="module")
def schema(app: Any) -> dict[str, Any]:
    document: dict[str, Any] = app.openapi()
    return document


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_every_fastapi_route_and_every_proxy_route_is_described(
    app: Any, schema: dict[str, Any]
) -> None:
    served = {
        f"{method} {route.path.replace(':path', '')}"
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    described = set(operations(schema))
    proxied = {
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /v1/responses",
        "POST /v1/embeddings",
    }
    assert served | proxied == described
    assert len(described) == 18


@pytest.mark.parametrize(
    ("operation", "request_schemas"),
    [
        pytest.param("POST /v1/chat/completions", {"ChatCompletionRequest"}, id="chat"),
        pytest.param("POST /v1/completions", {"CompletionRequest"}, id="completions"),
        pytest.param(
            "POST /v1/adapters",
            {"NamedAdapterDocumentBody", "NamedFlatAdapterBody"},
            id="create-adapter",
        ),
        pytest.param(
            "PUT /v1/adapters/{name}", {"AdapterDocumentBody", "FlatAdapterBody"}, id="put-adapter"
        ),
    ],
)
def test_bodies_are_the_real_models(
    schema: dict[str, Any], operation: str, request_schemas: set[str]
) -> None:
    body = operations(schema)[operation]["requestBody"]["content"]["application/json"]["schema"]
    refs = [body] if "$ref" in body else body["oneOf"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in refs} == request_schemas
    for name in request_schemas:
        assert name in schema["components"]["schemas"]


def test_proxy_routes_answer_json_or_a_stream_and_document_each_error(
    schema: dict[str, Any],
) -> None:
    chat = operations(schema)["POST /v1/chat/completions"]["responses"]
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    event = chat["200"]["content"]["text/event-stream"]["schema"]
    assert event["required"] == ["data"]
    for status in ("400", "401", "403", "404", "408", "413", "422", "429", "502", "503", "504"):
        assert chat[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert "Retry-After" in chat["429"]["headers"]
    assert "Retry-After" in chat["503"]["headers"]


def test_no_route_documents_fastapis_422_the_gateway_never_sends(
    schema: dict[str, Any],
) -> None:
    """Request validation errors are OpenAI's 400 (the app's handler), not FastAPI's 422."""
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for name, operation in operations(schema).items():
        for status, response in operation["responses"].items():
            if status >= "400":
                assert "ErrorResponse" in str(response["content"]), (name, status)


def test_creating_an_adapter_links_to_reading_replacing_and_deleting_it(
    schema: dict[str, Any],
) -> None:
    created = operations(schema)["POST /v1/adapters"]["responses"]["201"]
    targets = {link["operationId"] for link in created["links"].values()}
    assert targets == {"get_adapter", "put_adapter", "delete_adapter"}
    assert operations(schema)["GET /metrics"]["responses"]["200"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }
