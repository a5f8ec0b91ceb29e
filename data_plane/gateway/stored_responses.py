"""The stored-response routes of the Responses API, answered with a clear 404.

`GET|DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and
`GET /v1/responses/{id}/input_items` need the response stored where the request ran. The
gateway spreads requests over replicas and the engines store nothing (openai_inputs.py),
so these say so, in OpenAI's shape (the SDK raises NotFoundError), after authentication.
"""

from __future__ import annotations

from fastapi import APIRouter

from data_plane.gateway.dependencies import Auth
from data_plane.gateway.errors import NotFoundError
from data_plane.gateway.openai_inputs import NOT_STORED
from data_plane.gateway.openapi.responses import error_responses

stored_responses = APIRouter(tags=["openai"])
_REFUSED = error_responses(401, 404)


class ResponseNotStoredError(NotFoundError):
    code = "response_not_stored"

    def __init__(self, response_id: str) -> None:
        super().__init__(f"No stored response `{response_id}`. {NOT_STORED}", param="response_id")


@stored_responses.get(
    "/v1/responses/{response_id}", operation_id="retrieve_response", responses=_REFUSED
)
async def retrieve_response(response_id: str, _: Auth) -> None:
    raise ResponseNotStoredError(response_id)


@stored_responses.delete(
    "/v1/responses/{response_id}", operation_id="delete_response", responses=_REFUSED
)
async def delete_response(response_id: str, _: Auth) -> None:
    raise ResponseNotStoredError(response_id)


@stored_responses.post(
    "/v1/responses/{response_id}/cancel", operation_id="cancel_response", responses=_REFUSED
)
async def cancel_response(response_id: str, _: Auth) -> None:
    raise ResponseNotStoredError(response_id)


@stored_responses.get(
    "/v1/responses/{response_id}/input_items",
    operation_id="list_response_input_items",
    responses=_REFUSED,
)
async def list_input_items(response_id: str, _: Auth) -> None:
    raise ResponseNotStoredError(response_id)
