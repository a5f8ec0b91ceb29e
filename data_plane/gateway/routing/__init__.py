"""Routing types: which replica serves a request (pure: no I/O, no clocks).

One narrow interface, `Policy.choose(candidates, request) -> (index, reason)`, with the
precondition that `candidates` is non-empty and holds only routable replicas (ready, not
ejected, under the per-replica cap, with the request's adapter loaded). The admission
filters filter; the policy, a scheduling profile (data_plane/gateway/scheduling), ranks.
The profiles are re-exported here under their policy names.
"""

from data_plane.gateway.routing.policy import (
    POLICY_NAMES,
    Policy,
    ReplicaLoad,
    RouteRequest,
    load_bound,
    load_of,
    lora_score,
)
from data_plane.gateway.routing.ring import HashRing, stable_hash
from data_plane.gateway.scheduling.profiles import (
    DefaultPolicy,
    LeastLoad,
    LoraAffinity,
    PrefixAffinity,
    RoundRobin,
)
from data_plane.gateway.scheduling.profiles import make_profile as make_policy

__all__ = [
    "POLICY_NAMES",
    "DefaultPolicy",
    "HashRing",
    "LeastLoad",
    "LoraAffinity",
    "Policy",
    "PrefixAffinity",
    "ReplicaLoad",
    "RoundRobin",
    "RouteRequest",
    "load_bound",
    "load_of",
    "lora_score",
    "make_policy",
    "stable_hash",
]
