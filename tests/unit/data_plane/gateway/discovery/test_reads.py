"""DiscoveryReads: reads in order, one fresh read shared by the requests that missed."""

from __future__ import annotations

import asyncio

import pytest

from data_plane.gateway.discovery.reads import DiscoveryReads


class Source:
    """A discovery read that records when each read began and ended, and can be held."""

    def __init__(self) -> None:
        self.began: list[float] = []
        self.ended: list[float] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def read(self) -> bool:
        loop = asyncio.get_running_loop()
        self.began.append(loop.time())
        await self.gate.wait()
        self.ended.append(loop.time())
        if self.fail:
            raise RuntimeError("the source broke")
        return True


def reads_of(source: Source, spacing_s: float = 0.0) -> DiscoveryReads:
    return DiscoveryReads(source.read, lambda: asyncio.get_running_loop().time(), spacing_s)


async def test_reads_run_one_at_a_time_in_the_order_asked() -> None:
    source = Source()
    reads = reads_of(source)
    source.gate.clear()
    first = asyncio.create_task(reads.read())
    second = asyncio.create_task(reads.read())
    await asyncio.sleep(0)
    assert len(source.began) == 1  # the second waits for the first to finish
    source.gate.set()
    assert await first
    assert await second
    assert source.began[1] >= source.ended[0]


async def test_a_read_that_began_after_the_request_answers_it_without_another() -> None:
    source = Source()
    reads = reads_of(source)
    arrived = asyncio.get_running_loop().time()
    await reads.read()
    await reads.since(arrived)
    assert len(source.began) == 1


async def test_requests_that_miss_together_share_one_read() -> None:
    source = Source()
    reads = reads_of(source)
    arrived = asyncio.get_running_loop().time()
    await asyncio.gather(*(reads.since(arrived) for _ in range(50)))
    assert len(source.began) == 1
    assert reads.last_began >= arrived


async def test_a_read_begun_before_the_request_arrived_is_not_enough() -> None:
    source = Source()
    reads = reads_of(source)
    source.gate.clear()
    old = asyncio.create_task(reads.read())
    await asyncio.sleep(0.01)  # the old read is under way when the request arrives
    arrived = asyncio.get_running_loop().time()
    waiter = asyncio.create_task(reads.since(arrived))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    source.gate.set()
    await old
    await waiter
    assert len(source.began) == 2
    assert source.began[1] >= arrived


async def test_reads_for_misses_begin_no_more_often_than_the_spacing() -> None:
    source = Source()
    reads = reads_of(source, spacing_s=0.05)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        await reads.since(loop.time())
    assert len(source.began) == 3
    gaps = [b - a for a, b in zip(source.began, source.began[1:], strict=False)]
    assert all(gap >= 0.05 for gap in gaps), gaps


async def test_a_failing_read_releases_its_waiters() -> None:
    source = Source()
    source.fail = True
    reads = reads_of(source)
    await reads.since(asyncio.get_running_loop().time())  # logged, not raised
    with pytest.raises(RuntimeError):
        await reads.read()
    assert len(source.began) == 2


async def test_a_cancelled_waiter_leaves_the_shared_read_to_the_others() -> None:
    source = Source()
    reads = reads_of(source)
    source.gate.clear()
    arrived = asyncio.get_running_loop().time()
    leaving = asyncio.create_task(reads.since(arrived))
    staying = asyncio.create_task(reads.since(arrived))
    await asyncio.sleep(0.01)
    leaving.cancel()
    source.gate.set()
    await staying
    assert leaving.cancelled()
    assert source.ended  # the read was not cancelled with the first waiter


async def test_close_cancels_a_read_in_progress() -> None:
    source = Source()
    reads = reads_of(source)
    source.gate.clear()
    waiter = asyncio.create_task(reads.since(asyncio.get_running_loop().time()))
    await asyncio.sleep(0.01)
    await reads.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not source.ended
