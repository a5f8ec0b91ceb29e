"""A generation's bookkeeping, alone: stop strings end a choice (and its sequence) early,
text that could start a stop string is held back, and what is emitted adds up to the text."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from data_plane.inference.simulator.engine_core import SimRequest
from data_plane.inference.simulator.generation_state import Choice, Generation
from data_plane.inference.simulator.protocol.generation import GenerationParams
from data_plane.inference.simulator.text import tokenize

WORDS = ["the", "quick", "brown", "fox", "jumps"]


@dataclass
class Finisher:
    """Records the sequences a generation ends early."""

    ended: list[tuple[str, str]] = field(default_factory=list)

    def finish_early(self, sequence: SimRequest, reason: str) -> None:
        self.ended.append((sequence.request_id, reason))


def _generation(stop: list[str], planned_finish: str = "length") -> Generation:
    params = GenerationParams(
        kind="completion",
        model=None,
        prompts=["p"],
        messages=None,
        max_tokens=None,
        max_tokens_param="max_tokens",
        n=1,
        stream=True,
        include_usage=False,
        continuous_usage_stats=False,
        ignore_eos=False,
        stop=stop,
    )
    sequence = SimRequest(
        request_id="r-0",
        prompt_token_ids=[1],
        output_token_ids=[tokenize(" " + word)[0] for word in WORDS],
        arrival_time=0.0,
        planned_finish=planned_finish,
    )
    return Generation(
        params=params,
        request_id="r",
        created=0,
        model="m",
        prompt_tokens=1,
        choices=[Choice(sequence)],
    )


def _run(generation: Generation, finisher: Finisher) -> list[str | None]:
    sequence = generation.choices[0].sequence
    return [
        generation.advance(finisher, sequence, index)
        for index in range(len(sequence.output_token_ids))
    ]


@pytest.mark.parametrize(
    ("stop", "text", "finish", "stop_reason", "ended"),
    [
        pytest.param([], " the quick brown fox jumps", "length", None, [], id="no-stop"),
        pytest.param(
            ["brown"], " the quick ", "stop", "brown", [("r-0", "stop")], id="stop-ends-early"
        ),
        pytest.param(["jumps"], " the quick brown fox ", "stop", "jumps", [], id="stop-at-last"),
        pytest.param(["k b"], " the quic", "stop", "k b", [("r-0", "stop")], id="across-tokens"),
        pytest.param(["zzz"], " the quick brown fox jumps", "length", None, [], id="never-hit"),
    ],
)
def test_stop_strings(
    stop: list[str], text: str, finish: str, stop_reason: str | None, ended: list[tuple[str, str]]
) -> None:
    generation, finisher = _generation(stop), Finisher()
    emitted = _run(generation, finisher)
    choice = generation.choices[0]
    assert (choice.text, choice.finish_reason, choice.stop_reason) == (text, finish, stop_reason)
    assert "".join(piece for piece in emitted if piece) == text
    assert finisher.ended == ended
    assert generation.done


def test_text_that_may_start_a_stop_string_is_held_back() -> None:
    generation, finisher = _generation(["xyz"]), Finisher()
    sequence = generation.choices[0].sequence
    first = generation.advance(finisher, sequence, 0)
    assert first == " t"  # " the" less its last len("xyz") - 1 characters
    assert generation.advance(finisher, sequence, 1) == "he qui"


def test_a_choice_that_ended_emits_nothing_more() -> None:
    generation, finisher = _generation(["quick"]), Finisher()
    emitted = _run(generation, finisher)
    assert emitted[2:] == [None, None, None]
    assert generation.completion_tokens == 2
