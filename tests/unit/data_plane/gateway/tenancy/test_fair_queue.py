"""Weighted fair queuing of the waiters for a replica."""

from __future__ import annotations

import asyncio

from data_plane.gateway.tenancy.fair_queue import FairWakeups, Shares


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


def test_shares_keep_headroom_for_a_tenant_under_its_share() -> None:
    shares = Shares(reserve_fraction=0.25)
    shares.seen("noisy", 1, 0.0)
    for used in range(6):
        assert shares.may_take("noisy", used=used, capacity=8, now=0.0)
        shares.took("noisy")
    # alone, noisy may fill every slot
    assert shares.may_take("noisy", used=6, capacity=8, now=0.0)
    shares.seen("quiet", 1, 1.0)
    # quiet is active now: noisy (6 >= its share of 4) must leave 2 slots free
    assert not shares.may_take("noisy", used=6, capacity=8, now=1.0)
    assert shares.may_take("quiet", used=6, capacity=8, now=1.0)
    shares.took("quiet")
    shares.released("noisy")
    assert not shares.may_take("noisy", used=6, capacity=8, now=1.0)
    assert shares.may_take("noisy", used=5, capacity=8, now=1.0)
    # quiet idle for longer than the window and nothing in flight: noisy is alone again
    shares.released("quiet")
    assert shares.may_take("noisy", used=5, capacity=8, now=30.0)


def test_shares_off_or_uncapped() -> None:
    assert Shares(0).may_take("a", used=100, capacity=8, now=0)
    shares = Shares(0.25)
    shares.seen("a", 1, 0)
    shares.seen("b", 1, 0)
    assert shares.may_take("a", used=100, capacity=0, now=0)
