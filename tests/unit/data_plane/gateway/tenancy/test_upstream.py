"""The body tenancy sends up, and the usage event it hides again."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.tenancy.upstream import (
    UsageStripper,
    cache_salt,
    rewrite_body,
    usage_tokens,
)


def test_salt_is_per_tenant_and_replaces_the_clients() -> None:
    assert cache_salt("a") != cache_salt("b")
    assert cache_salt("a") == cache_salt("a")
    body = orjson.dumps({"model": "m", "prompt": "x", "cache_salt": "b-salt", "stream": True})
    out = orjson.loads(rewrite_body(body, "a", salt=True, want_usage=True))
    assert out["cache_salt"] == cache_salt("a")
    assert out["stream_options"] == {"include_usage": True}
    assert out["prompt"] == "x"


def test_no_salt_when_off() -> None:
    body = orjson.dumps({"model": "m", "prompt": "x"})
    assert "cache_salt" not in orjson.loads(rewrite_body(body, "a", salt=False, want_usage=False))


def test_usage_tokens() -> None:
    assert usage_tokens(b'{"usage":{"prompt_tokens":7,"completion_tokens":3}}') == 10
    assert usage_tokens(b"{}") == 0


def _events(n: int) -> list[bytes]:
    out = [
        b"data: " + orjson.dumps({"choices": [{"index": 0, "text": f"t{i}"}], "usage": None})
        for i in range(n)
    ]
    usage = {"prompt_tokens": 7, "completion_tokens": n}
    out.append(b"data: " + orjson.dumps({"choices": [], "usage": usage}))
    out.append(b"data: [DONE]")
    return [e + b"\n\n" for e in out]


@given(st.integers(1, 5), st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_stripper_removes_only_the_usage_event_however_chunks_split(
    n: int, cuts: list[int]
) -> None:
    events = _events(n)
    stream = b"".join(events)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(stream[at : at + cut])
        at += cut
    chunks.append(stream[at:])
    stripper = UsageStripper()
    out = b"".join(stripper.feed(c) for c in chunks) + stripper.flush()
    assert out == b"".join(e for e in events if b'"choices":[]' not in e)
    assert usage_tokens(stripper.usage) == 7 + n
