"""The bodies of vLLM's runtime LoRA API (`/v1/load_lora_adapter`,
`/v1/unload_lora_adapter`): required string fields and the adapter's rank from its
`adapter_config.json`, with vLLM's messages. Pure: no I/O (the caller reads the file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_plane.inference.simulator.protocol.errors import ApiError, schema_error


def require_strings(body: Any, names: tuple[str, ...]) -> Mapping[str, Any]:
    """`body` as an object whose `names` are all present and strings."""
    if not isinstance(body, Mapping):
        raise schema_error(
            "model_attributes_type",
            "",
            "Input should be a valid dictionary or object to extract fields from",
            body,
        )
    missing = [name for name in names if name not in body]
    for name in names:
        value = body.get(name)
        if name in body and not isinstance(value, str):
            raise schema_error("string_type", name, "Input should be a valid string", value)
    if missing:
        details = "\n".join(
            f"  {{'type': 'missing', 'loc': 'body.{name}', 'msg': 'Field required', "
            f"'input': '<dict of {len(body)} items>'}}"
            for name in missing
        )
        count = f"{len(missing)} validation error" + ("s" if len(missing) > 1 else "")
        raise ApiError(f"{count}:\n{details}", err_type="Bad Request", param=f"body.{missing[0]}")
    return body


def adapter_rank(config: Any, max_lora_rank: int) -> int:
    """The largest rank of a decoded `adapter_config.json` (`r` and its `rank_pattern`);
    refused above the engine's `max_lora_rank`."""
    ranks = [config.get("r", 0)]
    pattern = config.get("rank_pattern")
    if isinstance(pattern, Mapping):
        ranks.extend(pattern.values())
    rank = max(int(r) for r in ranks if isinstance(r, int | float))
    if rank > max_lora_rank:
        raise ApiError(
            f"LoRA rank {rank} is greater than max_lora_rank {max_lora_rank}.",
            status=500,
            err_type="InternalServerError",
        )
    return rank
