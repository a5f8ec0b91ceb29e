"""Weighted fair queuing of the waiters for a replica."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_plane.gateway.tenancy.fair_queue import SCAN_LIMIT, FairWakeups


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


async def _queued(
    queue: FairWakeups, arrivals: list[tuple[str, int, list[bool]]]
) -> list[asyncio.Task[bool]]:
    """Waiters in arrival order; each admits a freed slot while its flag list says so."""

    def reads(flag: list[bool]) -> Callable[[], bool]:
        return lambda: flag[0]

    tasks = []
    for flow, weight, flag in arrivals:
        tasks.append(asyncio.create_task(queue.wait(10, flow, weight, reads(flag))))
        await asyncio.sleep(0)
    return tasks


async def test_a_slot_goes_to_the_first_waiter_that_can_use_it() -> None:
    """The head of the line cannot take this slot (say, its adapter is elsewhere): the
    next one gets it, and the head keeps its place for a slot it can use."""
    queue = FairWakeups()
    head, second = [False], [True]
    first, other = await _queued(queue, [("a", 1, head), ("a", 1, second)])
    assert queue.notify()
    await asyncio.sleep(0)
    assert other.done() and await other
    assert not first.done() and len(queue) == 1
    head[0] = True
    assert queue.notify()
    assert await first
    assert len(queue) == 0


async def test_nobody_is_woken_when_no_waiter_can_use_the_slot() -> None:
    queue = FairWakeups()
    flags = [False]
    tasks = await _queued(queue, [("a", 1, flags), ("b", 1, flags)])
    assert not queue.notify()
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks) and len(queue) == 2
    flags[0] = True
    assert queue.notify() and queue.notify()
    assert await asyncio.gather(*tasks) == [True, True]


async def test_a_flow_whose_waiters_cannot_use_the_slot_is_passed_over() -> None:
    """Fair order across flows, among the waiters that can use the slot."""
    queue = FairWakeups()
    no, yes = [False], [True]
    tasks = await _queued(queue, [("x", 1, no), ("x", 1, no), ("y", 1, yes), ("z", 1, yes)])
    assert queue.notify()
    await asyncio.sleep(0)
    assert [t.done() for t in tasks] == [False, False, True, False]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(queue) == 0


async def test_a_waiter_cancelled_after_its_wakeup_passes_it_on() -> None:
    """Woken, then cancelled (its client left) before it could take the slot: the next
    waiter is woken instead, so the slot is not left empty until the next release."""
    queue = FairWakeups()
    first, second = await _queued(queue, [("a", 1, [True]), ("a", 1, [True])])
    assert queue.notify()
    first.cancel()  # lands before `first` runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second
    assert len(queue) == 0


async def test_the_scan_of_one_flow_is_bounded() -> None:
    """Behind more than SCAN_LIMIT waiters that cannot use it, a slot is not looked for
    further in that flow on this release (its cost stays bounded under a long queue)."""
    queue = FairWakeups()
    no, yes = [False], [True]
    tasks = await _queued(queue, [("a", 1, no)] * SCAN_LIMIT + [("a", 1, yes)])
    assert not queue.notify()
    tasks[0].cancel()  # one of those ahead leaves: the admitted waiter is now in reach
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert queue.notify()
    assert await tasks[-1]
    for t in tasks[1:-1]:
        t.cancel()
    await asyncio.gather(*tasks[1:-1], return_exceptions=True)


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(1, 3), st.booleans()), min_size=1, max_size=12
    )
)
def test_the_woken_waiter_is_the_first_in_fair_order_that_can_use_the_slot(
    arrivals: list[tuple[str, int, bool]],
) -> None:
    async def run() -> None:
        fair = await _order(FairWakeups(), [(f, w) for f, w, _ in arrivals])
        # The reference order names flows; the k-th wakeup of a flow is its k-th waiter.
        seen: dict[str, int] = {}
        order = []
        for flow in fair:
            index = [i for i, a in enumerate(arrivals) if a[0] == flow][seen.get(flow, 0)]
            seen[flow] = seen.get(flow, 0) + 1
            order.append(index)
        queue = FairWakeups()
        tasks = await _queued(queue, [(f, w, [ok]) for f, w, ok in arrivals])
        woke = queue.notify()
        await asyncio.sleep(0)
        expected = next((i for i in order if arrivals[i][2]), None)
        assert woke == (expected is not None)
        assert [i for i, t in enumerate(tasks) if t.done()] == (
            [] if expected is None else [expected]
        )
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


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
