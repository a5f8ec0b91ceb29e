"""Tokens and deterministic output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.inference.simulator.text import (
    plan_output,
    render_chat,
    token_text,
    tokenize,
)


def test_tokenize_is_stable_and_roughly_word_sized() -> None:
    text = "The capital of France is Paris, and the capital of Italy is Rome."
    assert tokenize(text) == tokenize(text)
    assert 12 <= len(tokenize(text)) <= 20
    assert tokenize("Hello") != tokenize("hello")


def test_chat_rendering_includes_roles_and_text_parts() -> None:
    rendered = render_chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, "there"]},
        ]
    )
    assert rendered == "<|system|>Be brief.\n<|user|>Hithere\n<|assistant|>"


def _plan(**overrides: object) -> list[int]:
    args: dict[str, object] = {
        "engine_seed": 0,
        "request_seed": None,
        "adapter": None,
        "prompt_token_ids": [1, 2, 3],
        "index": 0,
        "max_tokens": 16,
        "room": 100,
        "ignore_eos": False,
    }
    args.update(overrides)
    return plan_output(**args).token_ids  # type: ignore[arg-type]


def test_same_request_same_seed_same_output() -> None:
    assert _plan() == _plan()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"engine_seed": 1}, id="engine-seed"),
        pytest.param({"request_seed": 7}, id="request-seed"),
        pytest.param({"adapter": "sql"}, id="adapter"),
        pytest.param({"prompt_token_ids": [1, 2, 4]}, id="prompt"),
        pytest.param({"index": 1}, id="choice"),
    ],
)
def test_any_input_of_the_seed_changes_the_output(change: dict[str, object]) -> None:
    assert _plan(**change) != _plan()


@given(max_tokens=st.integers(1, 300), room=st.integers(1, 300), ignore_eos=st.booleans())
def test_max_tokens_is_obeyed_exactly(max_tokens: int, room: int, ignore_eos: bool) -> None:
    plan = plan_output(
        engine_seed=0,
        request_seed=None,
        adapter=None,
        prompt_token_ids=[5],
        index=0,
        max_tokens=max_tokens,
        room=room,
        ignore_eos=ignore_eos,
    )
    assert len(plan.token_ids) == min(max_tokens, room)
    assert plan.finish_reason == "length"


@given(seed=st.integers(0, 10_000), room=st.integers(1, 4000))
def test_natural_length_fits_the_context(seed: int, room: int) -> None:
    plan = plan_output(
        engine_seed=seed,
        request_seed=None,
        adapter=None,
        prompt_token_ids=[5],
        index=0,
        max_tokens=None,
        room=room,
        ignore_eos=False,
    )
    assert 1 <= len(plan.token_ids) <= room
    assert plan.finish_reason == ("stop" if len(plan.token_ids) < room else "length")


def test_output_tokens_have_text_that_tokenizes_back_to_them() -> None:
    for token_id in _plan(max_tokens=50):
        text = token_text(token_id)
        assert text.startswith(" ")
        assert tokenize(text) == [token_id]
