"""What the simulated engine says it is: vLLM's version, the system fingerprint, and the
`/v1/models` cards of the base model and its adapters. Pure: no I/O."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

VLLM_VERSION = "0.32.0"


def system_fingerprint(served_model_name: str) -> str:
    """The `system_fingerprint` of every answer: stable per version and served model."""
    return f"vllm-{VLLM_VERSION}-{zlib.crc32(served_model_name.encode()):08x}"


def model_card(
    *, model_id: str, created: int, root: str, parent: str | None, max_model_len: int | None
) -> dict[str, Any]:
    """One `/v1/models` entry (an adapter's `parent` is its base model, as vLLM lists it)."""
    perm_id = hashlib.blake2b(f"{model_id}|{created}".encode(), digest_size=8).hexdigest()
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
        "permission": [
            {
                "id": f"modelperm-{perm_id}",
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
