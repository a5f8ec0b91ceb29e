"""Replica selection as a pipeline of small pure plugins (see docs/architecture.md,
"Scheduling pipeline").

admission (scheduler.py: the gateway's slots, fair shares, holds and waits) -> admission
filters (filters.py: ready, healthy, not tried, adapter loaded, under the cap) -> the
Model's profile (profiles.py: profile filters, weighted scorers, a picker, a reason; what
profiles share, e.g. the KV index, comes in a `SchedulingContext`, context.py) ->
post-response hooks (scheduler.py: released, succeeded, failed: metrics, fair-share
accounting, passive health).

Everything here but scheduler.py is pure (no I/O, no clocks: time comes in on the
request). scheduler.py is not imported here (it needs the fleet, which needs the profiles):
import it from `data_plane.gateway.scheduling.scheduler`.
"""

from data_plane.gateway.routing.policy import ReplicaLoad, RouteRequest
from data_plane.gateway.scheduling.context import SchedulingContext
from data_plane.gateway.scheduling.filters import ReplicaState, StateFilter
from data_plane.gateway.scheduling.framework import Filter, Picker, Profile, Scorer, Weighted
from data_plane.gateway.scheduling.profiles import PROFILE_NAMES, make_profile

__all__ = [
    "PROFILE_NAMES",
    "Filter",
    "Picker",
    "Profile",
    "ReplicaLoad",
    "ReplicaState",
    "RouteRequest",
    "SchedulingContext",
    "Scorer",
    "StateFilter",
    "Weighted",
    "make_profile",
]
