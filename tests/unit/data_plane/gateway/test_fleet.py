from __future__ import annotations

import pytest

from data_plane.gateway.discovery.state import StateError, parse_state, parse_upstreams
from data_plane.gateway.errors import ModelNotFoundError, NoReadyReplicaError
from data_plane.gateway.fleet import Fleet, FleetSettings, FleetSnapshot, ModelInfo, ReplicaInfo
from data_plane.gateway.health import Failure

STATE = {
    "models": [
        {
            "name": "llama",
            "routingPolicy": "least-load",
            "maxLoras": 2,
            "replicas": [
                {
                    "name": "llama-0",
                    "engineUrl": "http://127.0.0.1:8100/",
                    "ready": True,
                    "adapters": ["sql"],
                },
                {
                    "name": "llama-1",
                    "engineUrl": "http://127.0.0.1:8101",
                    "ready": False,
                    "adapters": [],
                },
            ],
            "unknownField": 1,
        }
    ],
    "adapters": [
        {"metadata": {"name": "sql"}, "spec": {"baseModel": "llama"}, "status": {"phase": "Ready"}},
        {"metadata": {"name": "chat"}, "spec": {"baseModel": "llama"}},
    ],
}


def test_state_is_parsed_leniently() -> None:
    snap = parse_state(STATE)
    (model,) = snap.models
    assert model.policy == "least-load"
    assert model.max_loras == 2
    assert model.replicas[0].url == "http://127.0.0.1:8100"
    assert model.replicas[0].adapters == frozenset({"sql"})
    assert not model.replicas[1].ready
    assert [a.name for a in snap.adapters] == ["sql", "chat"]


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param([], id="not-object"),
        pytest.param({"models": [{"replicas": []}]}, id="no-name"),
        pytest.param(
            {"models": [{"name": "m", "replicas": [{"engineUrl": "ftp://x"}]}]}, id="bad-url"
        ),
        pytest.param({"models": "x"}, id="models-not-list"),
    ],
)
def test_bad_state_is_refused(doc: object) -> None:
    with pytest.raises(StateError):
        parse_state(doc)


def test_upstream_entries() -> None:
    snap = parse_upstreams(["m=http://a:1,http://b:2#x+y", "n=http://c:3"])
    assert [m.name for m in snap.models] == ["m", "n"]
    assert snap.models[0].replicas[1].adapters == frozenset({"x", "y"})
    for bad in ("m", "m=", "=http://a", "m=a:1"):
        with pytest.raises(StateError):
            parse_upstreams([bad])


def test_resolve_and_candidates() -> None:
    fleet = Fleet(FleetSettings(per_replica_cap=1))
    fleet.apply(parse_state(STATE))
    route, adapter = fleet.resolve("sql")
    assert (route.name, adapter) == ("llama", "sql")
    assert fleet.resolve("llama")[1] is None
    with pytest.raises(ModelNotFoundError):
        fleet.resolve("nope")
    (r0,) = fleet.candidates(route, "sql", now=0)
    r0.in_flight = 1
    assert fleet.candidates(route, "sql", now=0) == []  # at its cap: wait
    with pytest.raises(NoReadyReplicaError) as info:
        fleet.candidates(route, "chat", now=0)  # declared but loaded nowhere
    assert info.value.code == "adapter_not_loaded"


def test_over_cap_offers_replicas_only_when_all_are_at_their_cap() -> None:
    """A tenant under its share may overcommit (tenancy/shares.py): under-cap replicas
    first, then those less than `over_cap` over it whose engine queues nothing."""
    fleet = Fleet(FleetSettings(per_replica_cap=2))
    fleet.apply(parse_upstreams(["m=http://a:1,http://b:2"]))
    route, _ = fleet.resolve("m")
    a, b = route.replicas
    a.in_flight, b.in_flight = 2, 1
    assert fleet.candidates(route, None, now=0, over_cap=2) == [b]
    b.in_flight = 2
    assert fleet.candidates(route, None, now=0) == []
    assert fleet.candidates(route, None, now=0, over_cap=2) == [a, b]
    a.in_flight, b.waiting = 4, 3  # a: overcommitted fully; b: its engine queues
    assert fleet.candidates(route, None, now=0, over_cap=2) == []


def test_live_state_survives_a_new_snapshot() -> None:
    fleet = Fleet(FleetSettings())
    fleet.apply(parse_state(STATE))
    route, _ = fleet.resolve("llama")
    r0 = route.replicas[0]
    r0.in_flight = 3
    r0.health.record_failure(Failure.CONNECT, now=0)
    fleet.apply(parse_state(STATE))
    again = fleet.resolve("llama")[0].replicas[0]
    assert again is r0
    assert not r0.retired
    assert again.in_flight == 3
    with pytest.raises(NoReadyReplicaError):
        fleet.candidates(fleet.resolve("llama")[0], None, now=1)
    assert not fleet.routable(now=1)


def test_model_id_wins_over_an_adapter_of_the_same_name() -> None:
    fleet = Fleet(FleetSettings())
    fleet.apply(
        FleetSnapshot(
            models=(
                ModelInfo("a", (ReplicaInfo("a-0", "http://x", adapters=frozenset({"b"})),)),
                ModelInfo("b", (ReplicaInfo("b-0", "http://y"),)),
            )
        )
    )
    assert fleet.resolve("b") == (fleet.models["b"], None)


def test_nothing_resolves_before_the_first_discovery() -> None:
    with pytest.raises(NoReadyReplicaError) as info:
        Fleet(FleetSettings()).resolve("anything")
    assert info.value.code == "discovery_pending"


def test_a_failed_adapter_is_said_so() -> None:
    state = {**STATE, "adapters": [{"metadata": {"name": "bad"}, "spec": {"baseModel": "llama"},
                                    "status": {"phase": "Failed"}}]}  # fmt: skip
    fleet = Fleet(FleetSettings())
    fleet.apply(parse_state(state))
    route, adapter = fleet.resolve("bad")
    with pytest.raises(NoReadyReplicaError) as info:
        fleet.candidates(route, adapter, now=0)
    assert info.value.code == "adapter_failed"


def test_replicas_that_go_away_are_retired() -> None:
    fleet = Fleet(FleetSettings())
    fleet.apply(parse_state(STATE))
    gone = fleet.resolve("llama")[0].replicas[1]
    fleet.apply(
        parse_state(
            {
                **STATE,
                "models": [{**STATE["models"][0], "replicas": STATE["models"][0]["replicas"][:1]}],
            }
        )
    )
    assert gone.retired
    assert [r.name for r in fleet.replicas()] == ["llama-0"]
