"""The routing fields of `/v1/responses` and `/v1/embeddings` bodies (pure).

Both carry their prompt in `input`. A Responses body may also name `instructions` (the
system prompt) and bounds its output with `max_output_tokens`; an embeddings body generates
nothing. The gateway serves each Responses request on whichever replica it picks, and the
engines keep no responses between requests (vLLM stores none unless told to, and a store on
one replica is not seen by another), so the stored-response parts of the API are refused
here with a 400 that says so (`previous_response_id`, `conversation`, `background`).
`store` itself passes through: vLLM accepts it and keeps nothing unless started with
`VLLM_ENABLE_RESPONSES_API_STORE` (which Hoist never sets).
"""

from __future__ import annotations

from typing import Any

from data_plane.gateway.errors import BadRequestError

NOT_STORED = (
    "This gateway does not store responses: each request may be served by another replica."
    " Send the whole conversation in `input` instead."
)


def responses_prefix(data: dict[str, Any], limit: int) -> str:
    """The start of a Responses prompt (instructions first), for prefix affinity; refuses
    what needs a stored response."""
    for name in ("previous_response_id", "conversation"):
        if data.get(name) is not None:
            raise BadRequestError(
                f"`{name}` is not supported. {NOT_STORED}",
                param=name,
                code="unsupported_parameter",
            )
    if data.get("background") is True:
        raise BadRequestError(
            f"`background` mode is not supported. {NOT_STORED}",
            param="background",
            code="unsupported_parameter",
        )
    value = data.get("input")
    if value is None or (isinstance(value, str | list) and not value):
        raise BadRequestError("You must provide a non-empty `input`.", param="input")
    if not isinstance(value, str | list):
        raise BadRequestError("`input` must be a string or an array of items.", param="input")
    instructions = data.get("instructions")
    parts = [instructions if isinstance(instructions, str) else ""]
    if isinstance(value, str):
        parts.append(value)
    else:
        for item in value:
            if not isinstance(item, dict):
                raise BadRequestError("Each `input` item must be an object.", param="input")
            parts.append(_item_text(item))
            if sum(len(p) for p in parts) >= limit:
                break
    return "\n".join(parts)[:limit]


def _item_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def responses_max_tokens(data: dict[str, Any]) -> int | None:
    value = data.get("max_output_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def embeddings_prefix(data: dict[str, Any], limit: int) -> str:
    """The start of the first input to embed."""
    value = data.get("input")
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list) and value:
        first = value[0]
        if isinstance(first, str):
            return first[:limit]
        if isinstance(first, int):  # one input as token ids
            return ",".join(str(t) for t in value[: max(1, limit // 4)])
        if isinstance(first, list):  # several inputs as token ids
            return ",".join(str(t) for t in first[: max(1, limit // 4)])
        if isinstance(first, dict):  # one conversation (vLLM embeds chat messages too)
            return "".join(_item_text(m) for m in value if isinstance(m, dict))[:limit]
        raise BadRequestError(
            "`input` must be a string, an array of strings or of token ids.", param="input"
        )
    if value is None or isinstance(value, list):
        raise BadRequestError("You must provide a non-empty `input`.", param="input")
    raise BadRequestError(
        "`input` must be a string, an array of strings or of token ids.", param="input"
    )
