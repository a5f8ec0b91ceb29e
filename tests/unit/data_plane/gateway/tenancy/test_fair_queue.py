"""Weighted fair queuing of the waiters for a replica."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.tenancy.fair_queue import FairWakeups


async def _order(queue: FairWakeups, arrivals: list[tuple[str, int]]) -> list[str]:
    woken: list[str] = []

    async def wait(flow: str, weight: int) -> None:
        assert await queue.wait(10, flow, weight)
        woken.append(flow)

    tasks = []
    for flow, weight in arrivals:
        tasks.append(asyncio.create_task(wait(flow, weight)))
        await asyncio.sleep(0)  # queued in arrival order
    for _ in arrivals:
        queue.notify()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return woken


async def test_one_flow_is_first_come_first_served() -> None:
    assert await _order(FairWakeups(), [("a", 1)] * 4) == ["a"] * 4


async def test_a_burst_does_not_starve_a_quiet_flow() -> None:
    arrivals = [("noisy", 1)] * 10 + [("quiet", 1)] * 2
    woken = await _order(FairWakeups(), arrivals)
    assert woken[:4] == ["noisy", "quiet", "noisy", "quiet"]


async def test_weights_share_the_wakeups() -> None:
    arrivals = [("heavy", 3)] * 9 + [("light", 1)] * 9
    woken = await _order(FairWakeups(), arrivals)
    assert woken[:8].count("heavy") == 6  # 3:1 while both wait
    assert woken[:8].count("light") == 2


async def test_timed_out_waiters_are_skipped_and_len_counts_the_live() -> None:
    queue = FairWakeups()
    assert not await queue.wait(0.01, "a")
    assert len(queue) == 0
    task = asyncio.create_task(queue.wait(10, "b"))
    await asyncio.sleep(0)
    assert len(queue) == 1
    queue.notify()
    assert await task
    assert len(queue) == 0
    assert not await queue.wait(0, "c")


def _served(arrivals: list[tuple[str, int]]) -> list[str]:
    return asyncio.run(_order(FairWakeups(), arrivals))


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.integers(1, 5), min_size=2, max_size=3),
    backlog=st.integers(4, 12),
)
def test_backlogged_flows_are_served_in_proportion_to_their_weights(
    weights: list[int], backlog: int
) -> None:
    """Every prefix of the wakeups gives each backlogged flow its weighted share, to
    within one request of each flow (start-time fair queuing's bound)."""
    flows = {f"f{i}": w for i, w in enumerate(weights)}
    arrivals = [(f, w) for f, w in flows.items() for _ in range(backlog * w)]
    woken = _served(arrivals)
    served = dict.fromkeys(flows, 0)
    for flow in woken[: backlog * min(weights)]:  # all flows still backlogged
        served[flow] += 1
        norm = {f: served[f] / flows[f] for f in flows}
        for a, wa in flows.items():
            for b, wb in flows.items():
                assert norm[a] - norm[b] <= 1 / wa + 1 / wb + 1e-9, (norm, flows)


@settings(max_examples=40, deadline=None)
@given(noisy=st.integers(1, 5), quiet=st.integers(1, 5), backlog=st.integers(1, 40))
def test_a_flow_joining_behind_any_backlog_is_woken_within_its_weighted_turn(
    noisy: int, quiet: int, backlog: int
) -> None:
    """No starvation: a quiet flow's waiter is woken after at most about
    noisy/quiet + 1 of the noisy flow's waiters, however long the noisy queue is."""
    woken = _served([("noisy", noisy)] * backlog + [("quiet", quiet)])
    assert woken.index("quiet") <= min(backlog, noisy // quiet + 1)
