"""Routing policies: which replica serves a request (pure: no I/O, no clocks).

One narrow interface, `Policy.choose(candidates, request) -> (index, reason)`, with the
precondition that `candidates` is non-empty and holds only routable replicas (ready, not
ejected, under the per-replica cap, with the request's adapter loaded). The fleet filters;
the policy ranks.
"""

from data_plane.gateway.routing.policy import (
    POLICY_NAMES,
    DefaultPolicy,
    LeastLoad,
    LoraAffinity,
    Policy,
    PrefixAffinity,
    ReplicaLoad,
    RoundRobin,
    RouteRequest,
    lora_score,
    make_policy,
)
from data_plane.gateway.routing.ring import HashRing, stable_hash

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
    "lora_score",
    "make_policy",
    "stable_hash",
]
