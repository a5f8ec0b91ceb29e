"""Shares of a saturated model: headroom and bounded overcommit for tenants under their share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.tenancy.shares import WAIT, Shares, ShareSettings

CAPACITY = 8  # e.g. 2 replicas x a cap of 4


def _shares(**values: float) -> Shares:
    return Shares(ShareSettings(**values))  # type: ignore[arg-type]


def _hold(shares: Shares, tenant: str, n: int, now: float, weight: int = 1) -> None:
    shares.seen(tenant, weight, now)
    for _ in range(n):
        shares.took(tenant, now)


def test_a_tenant_alone_sees_the_plain_cap() -> None:
    shares = _shares(reserve_fraction=0.25, overcommit=2)
    _hold(shares, "noisy", 8, 0.0)
    for used in (0, 6, 8):
        assert shares.allowance("noisy", used, CAPACITY, now=1.0) == 0


def test_an_over_share_tenant_leaves_the_reserve_free_for_a_quiet_one() -> None:
    shares = _shares(reserve_fraction=0.25, overcommit=2)
    _hold(shares, "noisy", 6, 0.0)
    shares.seen("quiet", 1, 20.0)  # noisy has held 6 for 20 s: its average is ~6
    assert shares.allowance("noisy", used=5, capacity=CAPACITY, now=20.0) == 0
    assert shares.allowance("noisy", used=6, capacity=CAPACITY, now=20.0) is WAIT
    # the quiet tenant may take those slots, and go over the cap when they are gone
    assert shares.allowance("quiet", used=6, capacity=CAPACITY, now=20.0) == 2
    assert shares.allowance("quiet", used=8, capacity=CAPACITY, now=20.0) == 2


def test_a_quiet_burst_over_its_share_still_overcommits() -> None:
    """Its average decides: three quiet requests at once, rarely, do not make it noisy."""
    shares = _shares(reserve_fraction=0.25, overcommit=2)
    _hold(shares, "noisy", 4, 0.0)
    shares.seen("quiet", 1, 0.0)
    for i in range(20):  # one quiet request in flight every other second
        shares.took("quiet", float(i))
        shares.released("quiet", i + 0.5)
        shares.seen("quiet", 1, i + 0.5)
    _hold(shares, "quiet", 5, 20.0)  # a burst: 5 in flight, more than its share of 2 of 4
    assert shares.usage("quiet", 20.0) < 1
    assert shares.allowance("quiet", used=9, capacity=4, now=20.0) == 2


def test_a_tenant_that_holds_its_share_for_long_is_not_under_it() -> None:
    shares = _shares(reserve_fraction=0.25, overcommit=2)
    _hold(shares, "a", 4, 0.0)
    _hold(shares, "b", 4, 0.0)
    shares.seen("a", 1, 30.0)
    shares.seen("b", 1, 30.0)
    assert shares.usage("a", 30.0) == pytest.approx(4, abs=0.01)
    # both at their share: no overcommit and no reserve, the plain cap (work-conserving)
    assert shares.allowance("a", used=7, capacity=CAPACITY, now=30.0) == 0
    assert shares.allowance("b", used=8, capacity=CAPACITY, now=30.0) == 0


def test_a_burst_that_has_just_begun_is_held_to_the_reserve() -> None:
    """Its average is still low, but it holds its share: it leaves the reserve free; and
    its low average does not, in turn, hold back the quiet tenant."""
    shares = _shares(reserve_fraction=0.25, overcommit=2)
    for i in range(10):
        shares.seen("quiet", 1, float(i))
        shares.took("quiet", float(i))
        shares.released("quiet", i + 0.3)
    _hold(shares, "noisy", 6, 10.0)
    assert shares.usage("noisy", 10.1) < shares.usage("quiet", 10.1) + 1
    assert shares.allowance("noisy", used=6, capacity=CAPACITY, now=10.1) is WAIT
    _hold(shares, "quiet", 4, 10.1)  # the quiet tenant at its share of 4
    assert shares.allowance("quiet", used=10, capacity=CAPACITY, now=10.1) == 2


def test_weights_set_the_shares() -> None:
    shares = _shares(reserve_fraction=0.25, overcommit=1)
    _hold(shares, "heavy", 5, 0.0, weight=3)  # share 6 of 8
    _hold(shares, "light", 0, 0.0, weight=1)  # share 2 of 8
    assert shares.allowance("heavy", used=5, capacity=CAPACITY, now=30.0) == 0  # under 6
    _hold(shares, "heavy", 1, 30.0, weight=3)
    shares.seen("light", 1, 59.0)
    assert shares.allowance("heavy", used=6, capacity=CAPACITY, now=60.0) is WAIT
    assert shares.allowance("light", used=6, capacity=CAPACITY, now=60.0) == 1


def test_an_idle_tenant_stops_counting_after_the_window() -> None:
    shares = _shares(reserve_fraction=0.25, overcommit=2, window_s=10)
    _hold(shares, "noisy", 6, 0.0)
    shares.seen("quiet", 1, 1.0)
    assert shares.allowance("noisy", used=6, capacity=CAPACITY, now=5.0) is WAIT
    assert shares.allowance("noisy", used=6, capacity=CAPACITY, now=11.5) == 0
    shares.took("quiet", 12.0)  # in flight: active again, whatever the window
    assert shares.allowance("noisy", used=7, capacity=CAPACITY, now=30.0) is WAIT
    shares.released("quiet", 30.0)
    assert shares.allowance("noisy", used=7, capacity=CAPACITY, now=30.0) == 0


def test_off_switches() -> None:
    no_reserve = _shares(reserve_fraction=0, overcommit=0)
    _hold(no_reserve, "noisy", 8, 0.0)
    no_reserve.seen("quiet", 1, 20.0)
    assert no_reserve.allowance("noisy", used=8, capacity=CAPACITY, now=20.0) == 0
    assert no_reserve.allowance("quiet", used=8, capacity=CAPACITY, now=20.0) == 0
    uncapped = _shares()
    _hold(uncapped, "a", 3, 0.0)
    uncapped.seen("b", 1, 0.0)
    assert uncapped.allowance("a", used=100, capacity=0, now=0.0) == 0


def test_released_tenants_are_forgotten_and_unknown_ones_are_harmless() -> None:
    shares = _shares()
    shares.released("never-seen", 0.0)
    assert shares.in_flight("never-seen") == 0
    _hold(shares, "a", 1, 0.0)
    shares.released("a", 1000.0)
    assert shares.usage("a", 1000.0) == 0.0  # forgotten


@pytest.mark.parametrize(
    "values",
    [{"reserve_fraction": 1.0}, {"reserve_fraction": -0.1}, {"overcommit": -1}, {"window_s": 0}],
)
def test_settings_are_checked(values: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ShareSettings(**values)  # type: ignore[arg-type]


# --- properties: a simulated fleet driven by random arrivals and completions ------------

_event = st.tuples(
    st.sampled_from(["arrive", "arrive", "finish"]),
    st.sampled_from(["a", "b", "c"]),
    st.floats(0, 3),  # time since the previous event
    st.integers(0, 10_000),  # which request finishes
)


_fleet = st.tuples(
    st.integers(1, 3),  # replicas
    st.integers(1, 6),  # per-replica cap
    st.integers(0, 3),  # overcommit
    st.sampled_from([0.0, 0.25, 0.5]),  # reserve fraction
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(_event, max_size=150),
    fleet=_fleet,
    weights=st.fixed_dictionaries({t: st.integers(1, 4) for t in "abc"}),
)
def test_caps_hold_up_to_the_overcommit_and_nobody_is_locked_out(
    events: list[tuple[str, str, float, int]],
    fleet: tuple[int, int, int, float],
    weights: dict[str, int],
) -> None:
    replicas, cap, overcommit, reserve = fleet
    shares = Shares(ShareSettings(reserve_fraction=reserve, overcommit=overcommit))
    in_flight = [0] * replicas  # per replica
    held: list[tuple[str, int]] = []  # (tenant, replica) per request in flight
    capacity = cap * replicas
    now = 0.0
    for kind, tenant, dt, pick in events:
        now += dt
        if kind == "finish":
            if held:
                who, r = held.pop(pick % len(held))
                in_flight[r] -= 1
                shares.released(who, now)
            continue
        shares.seen(tenant, weights[tenant], now)
        used = sum(in_flight)
        allowance = shares.allowance(tenant, used, capacity, now)
        # nobody is locked out: an under-used fleet always admits, whoever asks
        reserve_slots = max(1, int(capacity * reserve)) if reserve > 0 else 0
        if used < capacity - reserve_slots:
            assert allowance is not WAIT
        if allowance is WAIT:
            continue
        # the gateway's choice (Fleet.candidates): under the cap first, else over it
        under = [r for r in range(replicas) if in_flight[r] < cap]
        over = [r for r in range(replicas) if in_flight[r] < cap + allowance]
        choice = under or over
        if not choice:
            continue
        r = choice[pick % len(choice)]
        in_flight[r] += 1
        held.append((tenant, r))
        shares.took(tenant, now)
        assert in_flight[r] <= cap + overcommit  # never beyond the documented overcommit
        if in_flight[r] > cap:
            assert allowance > 0
        assert shares.in_flight(tenant) == sum(1 for t, _ in held if t == tenant)
    # when the answers in flight end, every tenant may take a slot again (no starvation)
    for who, _ in held:
        shares.released(who, now)
    for tenant in weights:
        assert shares.allowance(tenant, 0, capacity, now) is not WAIT


@settings(max_examples=100, deadline=None)
@given(
    holds=st.lists(st.tuples(st.integers(0, 12), st.floats(0, 5)), max_size=40),
    cap=st.integers(1, 8),
    overcommit=st.integers(0, 3),
)
def test_a_single_tenant_is_never_held_back_or_overcommitted(
    holds: list[tuple[int, float]], cap: int, overcommit: int
) -> None:
    """One tenant (tenancy off, or alone): the plain cap, exactly as without tenancy."""
    shares = Shares(ShareSettings(reserve_fraction=0.5, overcommit=overcommit))
    now = 0.0
    for n, dt in holds:
        now += dt
        shares.seen("only", 1, now)
        for _ in range(n):
            shares.took("only", now)
        assert shares.allowance("only", used=n, capacity=cap, now=now) == 0
        for _ in range(n):
            shares.released("only", now)
