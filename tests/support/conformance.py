"""What the simulator-vs-vLLM conformance suite shares between its fixtures and tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL = "tiny"
MAX_MODEL_LEN = 512
MAX_LORAS = 2
MAX_LORA_RANK = 8


@dataclass(frozen=True)
class Engine:
    kind: str
    base_url: str
    model: str
    adapters: dict[str, Path]
    """Adapters of rank <= MAX_LORA_RANK, by name; `too-big` has rank 16."""
