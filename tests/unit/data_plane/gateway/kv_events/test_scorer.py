"""The precise prefix scorer and the `precise-prefix` profile (table tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.kv_events.index import KvBlockIndex
from data_plane.gateway.kv_events.prompt_tokens import SimulatorPromptTokens
from data_plane.gateway.kv_events.scorer import PrecisePrefixScorer
from data_plane.gateway.kv_events.wire import BlockStored
from data_plane.gateway.routing.policy import RouteRequest
from data_plane.gateway.scheduling import SchedulingContext, make_profile
from data_plane.gateway.scheduling.profiles import PrecisePrefix
from data_plane.inference.simulator.block_hashing import block_hashes
from data_plane.inference.simulator.text import render_chat, tokenize

BS = 4


@dataclass
class Replica:
    name: str
    in_flight: int = 0
    waiting: int = 0
    running_adapters: frozenset[str] | None = None
    max_loras: int = 4


MESSAGES = [
    {"role": "system", "content": "You answer questions about databases and their indexes."},
    {"role": "user", "content": "How do joins use an index on the inner table?"},
]
TOKENS = tokenize(render_chat(MESSAGES))
NUM_BLOCKS = len(TOKENS) // BS


def body(messages: Sequence[dict[str, str]] = MESSAGES, **extra: str) -> bytes:
    return orjson.dumps({"model": "m", "messages": messages, **extra})


def holding(index: KvBlockIndex, replica: str, blocks: int, adapter: str | None = None) -> None:
    """Tell the index that `replica` holds the first `blocks` blocks of TOKENS, as the
    simulator would publish them (its own hashes)."""
    hashes = block_hashes(TOKENS[: blocks * BS], BS, adapter=adapter, salt=None)
    extra: list[list[str] | None] | None = [[adapter]] * blocks if adapter else None
    index.apply(
        replica,
        0,
        [
            BlockStored(
                block_hashes=list(hashes),
                parent_block_hash=None,
                token_ids=TOKENS[: blocks * BS],
                block_size=BS,
                lora_name=adapter,
                extra_keys=list(extra) if extra else None,
            )
        ],
    )


@dataclass(frozen=True)
class Case:
    held: dict[str, int]
    """Replica -> leading blocks of TOKENS it holds."""
    request: RouteRequest
    expected: list[float]


def _frac(blocks: int) -> float:
    return blocks / NUM_BLOCKS


SCORER_CASES = [
    pytest.param(Case({}, RouteRequest(None, "", body=body()), [0, 0, 0]), id="cold"),
    pytest.param(
        Case({"a": NUM_BLOCKS, "b": 2}, RouteRequest(None, "", body=body()), [1.0, _frac(2), 0]),
        id="whole-prompt-and-part",
    ),
    pytest.param(
        Case({"c": 3}, RouteRequest(None, "", body=body()), [0, 0, _frac(3)]), id="only-c"
    ),
    pytest.param(
        Case({"a": NUM_BLOCKS}, RouteRequest(None, "", body=None), [0, 0, 0]), id="no-body"
    ),
    pytest.param(
        Case({"a": NUM_BLOCKS}, RouteRequest("sql", "", body=body()), [0, 0, 0]),
        id="other-adapter-misses",
    ),
    pytest.param(
        Case({"a": NUM_BLOCKS}, RouteRequest(None, "", body=body(cache_salt="t")), [0, 0, 0]),
        id="salted-request-misses",
    ),
    pytest.param(
        Case(
            {"a": NUM_BLOCKS},
            RouteRequest(None, "", body=body([{"role": "user", "content": "something else"}])),
            [0, 0, 0],
        ),
        id="other-prompt",
    ),
    pytest.param(
        Case({"a": NUM_BLOCKS}, RouteRequest(None, "", body=b"not json"), [0, 0, 0]), id="bad-body"
    ),
]


@pytest.mark.parametrize("case", SCORER_CASES)
def test_scores_are_the_held_fraction_of_the_prompt(case: Case) -> None:
    index = KvBlockIndex()
    for name, blocks in case.held.items():
        holding(index, name, blocks)
    scorer = PrecisePrefixScorer(index, SimulatorPromptTokens(), default_block_size=BS)
    scores = scorer.score([Replica("a"), Replica("b"), Replica("c")], case.request)
    assert scores == pytest.approx(case.expected)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_an_adapters_blocks_score_for_that_adapter() -> None:
    index = KvBlockIndex()
    holding(index, "b", NUM_BLOCKS, adapter="sql")
    scorer = PrecisePrefixScorer(index, SimulatorPromptTokens(), default_block_size=BS)
    assert scorer.score([Replica("a"), Replica("b")], RouteRequest("sql", "", body=body())) == [
        0,
        1,
    ]


def test_a_completion_prompt_is_tokenized_as_the_simulator_does() -> None:
    text = "The quick brown fox jumps over the lazy dog, twice over, and once more again."
    assert SimulatorPromptTokens()(orjson.dumps({"prompt": text})) == (tokenize(text), None)
    assert SimulatorPromptTokens()(orjson.dumps({"prompt": [5, 6, 7]})) == ([5, 6, 7], None)
    assert SimulatorPromptTokens()(orjson.dumps({"input": "x"})) is None


def _policy(index: KvBlockIndex) -> PrecisePrefix:
    profile = make_profile("precise-prefix", 1.25, SchedulingContext(index, kv_block_size=BS))
    assert isinstance(profile, PrecisePrefix)
    return profile


@pytest.mark.parametrize(
    ("held", "loads", "adapter", "running", "expected", "reason"),
    [
        pytest.param({"b": NUM_BLOCKS}, [0, 0, 0], None, {}, 1, "kv-hit", id="holder-wins"),
        pytest.param(
            {"a": NUM_BLOCKS, "b": NUM_BLOCKS}, [2, 0, 0], None, {}, 1, "kv-hit",
            id="equal-hits-less-load",
        ),
        pytest.param(
            {"b": NUM_BLOCKS}, [0, 9, 0], None, {}, None, "kv-miss-ring",
            id="holder-over-bound-ring-instead",
        ),
        pytest.param(
            {"b": NUM_BLOCKS}, [0, 0, 0], None, {"b": frozenset({"x", "y", "z", "w"})}, 1,
            "kv-hit", id="no-adapter-lora-tier-ignored",
        ),
    ],
)  # fmt: skip
def test_the_policy_filters_by_load_then_scores(
    *,
    held: dict[str, int],
    loads: list[int],
    adapter: str | None,
    running: dict[str, frozenset[str]],
    expected: int | None,
    reason: str,
) -> None:
    index = KvBlockIndex()
    for name, blocks in held.items():
        holding(index, name, blocks)
    candidates = [
        Replica(n, in_flight=load, running_adapters=running.get(n))
        for n, load in zip("abc", loads, strict=True)
    ]
    chosen, why = _policy(index).choose(candidates, RouteRequest(adapter, "p", body=body()))
    assert why == reason
    if expected is not None:
        assert chosen == expected
    else:
        assert chosen != 1  # the overloaded holder is filtered out


def test_the_lora_tier_comes_before_the_cache() -> None:
    index = KvBlockIndex()
    holding(index, "a", NUM_BLOCKS, adapter="sql")  # a holds the prompt but its slots are full
    full = frozenset({"w", "x", "y", "z"})
    candidates = [Replica("a", running_adapters=full), Replica("b", running_adapters=frozenset())]
    chosen, why = _policy(index).choose(candidates, RouteRequest("sql", "p", body=body()))
    assert (chosen, why) == (1, "kv-miss-ring")


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(MESSAGES, id="plain"),
        pytest.param([{"role": "user", "content": "(starts with punctuation) and ends. "}], id="edges"),
        pytest.param(
            [{"role": "system", "content": "  leading spaces\n\n"}, {"role": "user", "content": ""}],
            id="whitespace-and-empty",
        ),
        pytest.param(
            [{"role": "user", "content": [{"type": "text", "text": "parts"}, {"type": "text", "text": "!!"}]}],
            id="content-parts",
        ),
        pytest.param([{"role": "tool", "content": None}, {"content": "no role 123456"}], id="odd"),
    ],
)  # fmt: skip
def test_per_message_tokens_are_the_whole_prompts_tokens(messages: list[dict[str, object]]) -> None:
    tokens = SimulatorPromptTokens(cache_size=2)
    expected = tokenize(render_chat(messages))
    assert tokens(orjson.dumps({"messages": messages})) == (expected, None)
    assert tokens(orjson.dumps({"messages": messages})) == (expected, None)  # from the cache


def _reference(
    replicas: Sequence[Replica], adapter: str | None, held: dict[str, int]
) -> tuple[set[int], str]:
    """The profile's rule written out: within the bound, best LoRA tier; among those the
    holders with the best kv + 0.5 x headroom, else the first on the ring."""
    from data_plane.gateway.routing import HashRing, load_bound, load_of, lora_score

    bound = load_bound(replicas, 1.25)
    eligible = [i for i, r in enumerate(replicas) if load_of(r) + 1 <= bound]
    best = max(lora_score(replicas[i], adapter) for i in eligible)
    eligible = [i for i in eligible if lora_score(replicas[i], adapter) == best]
    holders = [i for i in eligible if held.get(replicas[i].name, 0) > 0]
    if holders:
        totals = {
            i: held[replicas[i].name] / NUM_BLOCKS + 0.5 * (1 - load_of(replicas[i]) / bound)
            for i in holders
        }
        top = max(totals.values())
        return {i for i, t in totals.items() if t == pytest.approx(top)}, "kv-hit"
    walk = HashRing([r.name for r in replicas]).walk(RouteRequest(adapter, "p").key_hash())
    return {next(i for i in walk if i in eligible)}, "kv-miss-ring"


running_sets = st.sampled_from([None, frozenset(), frozenset({"sql"}), frozenset("wxyz")])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), running_sets, st.integers(0, NUM_BLOCKS)),
        min_size=2,
        max_size=8,
    ),
    st.none() | st.just("sql"),
)
def test_the_profile_is_bounded_load_then_lora_tier_then_hits_then_the_ring(
    rows: list[tuple[int, frozenset[str] | None, int]], adapter: str | None
) -> None:
    index = KvBlockIndex()
    held = {}
    replicas = []
    for i, (load, running, blocks) in enumerate(rows):
        name = f"r{i}"
        replicas.append(Replica(name, in_flight=load, running_adapters=running))
        if blocks:
            holding(index, name, blocks, adapter=adapter)
            held[name] = blocks
    chosen, why = _policy(index).choose(replicas, RouteRequest(adapter, "p", body=body()))
    expected, reason = _reference(replicas, adapter, held)
    assert why == reason
    assert chosen in expected


def test_without_an_index_every_request_is_a_ring_miss() -> None:
    candidates = [Replica("a"), Replica("b"), Replica("c")]
    profile = make_profile("precise-prefix")  # no SchedulingContext: KV events off
    request = RouteRequest(None, "p", body=body())
    chosen, why = profile.choose(candidates, request)
    assert why == "kv-miss-ring"
    assert profile.choose(candidates, request) == (chosen, why)  # the ring: the same one
