"""InFlight: an attempt's first-byte deadline without a timer of its own (the watchdog's
sweep aborts it), and what an abort does at each stage of the attempt."""

from __future__ import annotations

import asyncio
import math

from data_plane.gateway.proxy.exchange import InFlight
from data_plane.gateway.upstream_client import UpstreamClientError


class Stream:
    """An upstream response being relayed: it records its abort."""

    last_data = 1.0

    def __init__(self) -> None:
        self.aborted: UpstreamClientError | None = None

    def abort(self, error: UpstreamClientError) -> None:
        self.aborted = error


async def _waiting() -> None:
    await asyncio.sleep(3600)


async def test_an_abort_before_the_first_byte_cancels_the_request_as_expired() -> None:
    task = asyncio.create_task(_waiting())
    await asyncio.sleep(0)
    attempt = InFlight(task, sent=0.0, deadline=5.0)
    assert attempt.silent_since() is None  # the sweep judges its deadline, not a silence
    attempt.abort("too slow")
    attempt.abort("again")  # once is enough
    assert attempt.expired
    assert task.cancelling() == 1
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_after_the_first_byte_an_abort_leaves_the_request_alone() -> None:
    task = asyncio.create_task(_waiting())
    attempt = InFlight(task, sent=0.0, deadline=5.0)
    attempt.deadline = math.inf  # what try_replica sets once the answer came
    attempt.abort("too slow")
    assert not attempt.expired
    assert task.cancelling() == 0
    task.cancel()


async def test_a_relayed_stream_is_aborted_through_its_response() -> None:
    task = asyncio.create_task(_waiting())
    attempt = InFlight(task, sent=0.0, deadline=math.inf)
    stream = Stream()
    attempt.response = stream  # type: ignore[assignment]
    assert attempt.silent_since() == 1.0
    attempt.abort("stalled")
    assert str(stream.aborted) == "stalled"
    assert task.cancelling() == 0
    task.cancel()
