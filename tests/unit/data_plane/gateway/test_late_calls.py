"""LateCalls: deferred callbacks on one shared timer, run after one to two ticks unless cancelled."""

from __future__ import annotations

import asyncio

from data_plane.gateway.late_calls import LateCalls
from tests.support.waiting import wait_until

TICK = 0.01


async def test_a_deferred_call_runs_no_sooner_than_one_tick() -> None:
    loop = asyncio.get_running_loop()
    late = LateCalls(TICK)
    ran: list[float] = []
    start = loop.time()
    late.defer(lambda: ran.append(loop.time()), loop)
    await asyncio.sleep(0)
    assert ran == []  # not at the next pass, like call_soon would
    await wait_until(lambda: bool(ran), timeout_s=10)
    assert ran[0] - start >= TICK
    assert late.pending == 0


async def test_a_cancelled_call_never_runs_and_the_others_do() -> None:
    loop = asyncio.get_running_loop()
    late = LateCalls(TICK)
    ran: list[str] = []
    late.defer(lambda: ran.append("a"), loop)
    late.defer(lambda: ran.append("b"), loop).cancel()
    late.defer(lambda: ran.append("c"), loop)
    assert late.pending == 2
    await wait_until(lambda: len(ran) == 2, timeout_s=10)
    await asyncio.sleep(4 * TICK)
    assert ran == ["a", "c"]


async def test_idle_it_holds_no_timer_and_a_later_defer_starts_one() -> None:
    loop = asyncio.get_running_loop()
    late = LateCalls(TICK)
    ran: list[int] = []
    late.defer(lambda: ran.append(1), loop)
    await wait_until(lambda: ran == [1], timeout_s=10)
    await wait_until(lambda: late._timer is None, timeout_s=10)
    late.defer(lambda: ran.append(2), loop)
    await wait_until(lambda: ran == [1, 2], timeout_s=10)


async def test_a_failing_call_does_not_stop_the_rest() -> None:
    loop = asyncio.get_running_loop()
    late = LateCalls(TICK)
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    late.defer(boom, loop)
    late.defer(lambda: ran.append("after"), loop)
    await wait_until(lambda: ran == ["after"], timeout_s=10)


async def test_close_drops_what_is_pending() -> None:
    loop = asyncio.get_running_loop()
    late = LateCalls(TICK)
    ran: list[int] = []
    late.defer(lambda: ran.append(1), loop)
    late.close()
    await asyncio.sleep(4 * TICK)
    assert ran == []
    assert late.pending == 0


def test_a_new_loop_starts_afresh() -> None:
    """A gateway object outliving its loop (tests) must not wait on the old loop's timer."""
    late = LateCalls(TICK)
    ran: list[int] = []

    async def defer_and_leave() -> None:
        late.defer(lambda: ran.append(1), asyncio.get_running_loop())

    async def defer_and_wait() -> None:
        late.defer(lambda: ran.append(2), asyncio.get_running_loop())
        await wait_until(lambda: 2 in ran, timeout_s=10)

    asyncio.run(defer_and_leave())  # its loop closes with the timer pending
    asyncio.run(defer_and_wait())
    assert ran == [2]
