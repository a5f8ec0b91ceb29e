"""The other gateway processes' numbers: encoding, sums, and what `Shares` decides on them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.gateway.tenancy.share_view import (
    ModelReport,
    PeerView,
    TenantLoad,
    cap_left,
    combined,
    decode,
    encode,
    merge,
)
from data_plane.gateway.tenancy.shares import WAIT, Shares, ShareSettings

loads = st.builds(
    TenantLoad,
    st.integers(1, 100),
    st.integers(0, 1000),
    st.floats(0, 1000, allow_nan=False).map(lambda u: round(u, 4)),
)
reports = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.builds(
        ModelReport,
        st.dictionaries(st.text(min_size=1, max_size=8), loads, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 50), max_size=4),
    ),
    max_size=3,
)


@given(reports)
def test_a_report_decodes_to_what_was_encoded(report: dict[str, ModelReport]) -> None:
    kept = {m: r for m, r in report.items() if r.tenants or r.replicas}
    assert decode(encode(report)) == kept


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"v": 2, "models": {}}', id="newer-version"),
        pytest.param('{"v": 1}', id="no-models"),
        pytest.param('{"v": 1, "models": {"m": {"t": {"a": [1, 2]}, "r": {}}}}', id="short-load"),
        pytest.param("[1, 2]", id="a-list"),
    ],
)
def test_a_report_that_does_not_parse_is_skipped(raw: str) -> None:
    assert decode(raw) is None


@given(st.lists(reports, max_size=4))
def test_merge_sums_requests_per_tenant_and_replica(many: list[dict[str, ModelReport]]) -> None:
    merged = merge(many)
    for model, m in merged.items():
        for tenant, load in m.tenants.items():
            parts = [
                r[model].tenants[tenant]
                for r in many
                if tenant in r.get(model, ModelReport()).tenants
            ]
            assert load.in_flight == sum(p.in_flight for p in parts)
            assert load.usage == pytest.approx(sum(p.usage for p in parts))
            assert load.weight == max(p.weight for p in parts)
        for replica, n in m.replicas.items():
            assert n == sum(r[model].replicas.get(replica, 0) for r in many if model in r)


@pytest.mark.parametrize(
    ("cap", "peers", "left"),
    [
        pytest.param(8, 0, 8, id="alone-the-whole-cap"),
        pytest.param(8, 5, 3, id="peers-hold-some"),
        pytest.param(8, 8, 0, id="peers-hold-all"),
        pytest.param(8, 11, 0, id="peers-over-it-never-negative"),
    ],
)
def test_cap_left(cap: int, peers: int, left: int) -> None:
    assert cap_left(cap, peers) == left


def test_combined_adds_the_peers_numbers_to_ours() -> None:
    mine = {"a": TenantLoad(1, 2, 1.5)}
    theirs = {"a": TenantLoad(3, 1, 0.5), "b": TenantLoad(1, 4, 4.0)}
    assert combined(mine, theirs) == {"a": TenantLoad(3, 3, 2.0), "b": TenantLoad(1, 4, 4.0)}


# --- Shares with a peers view -------------------------------------------------------


def _shares() -> Shares:
    return Shares(ShareSettings(reserve_fraction=0.25, overcommit=2))


def _hold(shares: Shares, tenant: str, n: int, now: float) -> None:
    shares.seen(tenant, 1, now)
    for _ in range(n):
        shares.took(tenant, now)


def test_a_tenant_alone_here_is_not_alone_when_a_peer_serves_another() -> None:
    """The bug this fixes: the noisy tenant on process A took every slot, because A never
    saw the quiet tenant that only process B serves."""
    here = _shares()
    _hold(here, "noisy", 6, 0.0)
    assert here.allowance("noisy", used=6, capacity=8, now=20.0) == 0  # alone: plain cap
    here.peers = PeerView({"quiet": TenantLoad(1, 0, 0.0)}, {}, capacity=8)
    assert here.allowance("noisy", used=6, capacity=8, now=20.0) is WAIT


def test_the_peers_requests_count_towards_the_tenant_and_the_model() -> None:
    """Noisy holds 3 here and 3 on the peer: 6 of 8 in all, over its share of 4."""
    here = _shares()
    _hold(here, "noisy", 3, 0.0)
    here.seen("quiet", 1, 20.0)
    assert here.allowance("noisy", used=3, capacity=8, now=20.0) == 2  # alone: under share
    here.peers = PeerView({"noisy": TenantLoad(1, 3, 3.0)}, {"r0": 3}, capacity=8)
    assert here.allowance("noisy", used=3, capacity=8, now=20.0) is WAIT
    assert here.allowance("quiet", used=3, capacity=8, now=20.0) == 2


def test_the_shared_capacity_replaces_this_process_slice() -> None:
    """Two workers each with half the cap (4 of 8): the share is of the whole 8."""
    here = _shares()
    _hold(here, "a", 3, 0.0)
    here.seen("b", 1, 20.0)
    assert here.allowance("a", used=3, capacity=4, now=20.0) is WAIT  # 3 >= 4/2 and reserve
    here.peers = PeerView({}, {}, capacity=8)
    assert here.allowance("a", used=3, capacity=4, now=20.0) == 2  # 3 < 8/2: under share


def test_loads_reports_the_active_tenants_only() -> None:
    here = _shares()
    _hold(here, "a", 2, 0.0)
    here.seen("idle", 1, 0.0)
    loads = here.loads(100.0)
    assert set(loads) == {"a"}
    assert loads["a"].in_flight == 2
    assert loads["a"].usage == pytest.approx(2.0)
