"""What tenancy changes in a request on its way up, and reads from the answer (pure).

- `cache_salt`: a per-tenant value, so one tenant's prompts never hit another's prefix
  cache (vLLM salts its block hashes with it); a client's own salt is replaced.
- `stream_options.include_usage`: asked for on streams, so token quotas count real usage;
  `UsageStripper` removes that final usage event again when the client did not ask for it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

_PROMPT = re.compile(rb'"(?:prompt|input)_tokens"\s*:\s*(\d+)')
_COMPLETION = re.compile(rb'"(?:completion|output)_tokens"\s*:\s*(\d+)')
"""Chat and completions say prompt/completion tokens, Responses input/output tokens."""


def cache_salt(tenant: str) -> str:
    return "hoist-" + hashlib.sha256(b"hoist-tenant:" + tenant.encode()).hexdigest()[:32]


def rewrite_body(body: bytes, tenant: str, *, salt: bool, want_usage: bool) -> bytes:
    """The body with the tenant's cache salt and, for streams, `include_usage` set."""
    data: dict[str, Any] = orjson.loads(body)  # parse_request already checked it
    if salt:
        data["cache_salt"] = cache_salt(tenant)
    if want_usage:
        options = data.get("stream_options")
        data["stream_options"] = {**(options or {}), "include_usage": True}
    return orjson.dumps(data)


def usage_tokens(payload: bytes) -> int:
    """Prompt plus completion tokens in an answer's `usage` (0 when it has none); an
    embedding's usage has prompt tokens only."""
    prompt = _PROMPT.search(payload)
    completion = _COMPLETION.search(payload)
    return (int(prompt.group(1)) if prompt else 0) + (int(completion.group(1)) if completion else 0)


class UsageStripper:
    """Feeds SSE bytes through, dropping the usage-only event (`choices: []` + `usage`).

    Events may be split across chunks: an incomplete tail is held until its end arrives.
    The dropped event's bytes are kept in `usage` for the quota.
    """

    def __init__(self) -> None:
        self._pending = b""
        self.usage = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: end + 2], data[end + 2 :]
        if b'"usage"' not in complete:
            return complete
        kept = []
        for event in complete.split(b"\n\n")[:-1]:
            if self._is_usage_only(event):
                self.usage = event
                continue
            kept.append(event + b"\n\n")
        return b"".join(kept)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    @staticmethod
    def _is_usage_only(event: bytes) -> bool:
        line = event.strip()
        if not line.startswith(b"data:") or b'"usage"' not in line:
            return False
        try:
            parsed = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(parsed, dict)
            and parsed.get("choices") == []
            and isinstance(parsed.get("usage"), dict)
        )
