"""A killed engine (SIGKILL) under many concurrent streams: nothing is lost.

Requests that had not sent a byte to their client are retried on another replica; streams
already started end with an SSE error event in OpenAI's shape; every request gets an answer.
"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.support.fault_load import ERROR_EVENT, OK, SteadyLoad
from tests.support.gateway import run_gateway
from tests.support.simulator import SimProcess
from tests.support.waiting import wait_until

STREAMS = 128
PLAIN = 16


async def test_a_killed_replica_loses_no_request(sim_processes: list[SimProcess]) -> None:
    upstreams = [f"sim={','.join(s.urls[0] for s in sim_processes)}"]
    async with run_gateway(discovery="static", upstreams=upstreams, load_poll_interval_s=0.5) as gw:
        killed = next(r for r in gw.gateway.fleet.replicas() if r.url == sim_processes[0].urls[0])
        async with SteadyLoad(
            gw.url,
            clients=STREAMS + PLAIN,
            streaming_share=STREAMS / (STREAMS + PLAIN),
            stream_tokens=64,
        ) as load:
            # Steady state: streams started long ago and still running everywhere.
            await wait_until(lambda: len(load.results) >= 2 * (STREAMS + PLAIN), timeout_s=60)
            await wait_until(lambda: killed.in_flight >= STREAMS // 6, timeout_s=30)
            in_flight_there = killed.in_flight
            sim_processes[0].process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await wait_until(lambda: killed.health.ejected, timeout_s=10)
            await asyncio.sleep(2.0)  # the load goes on over two replicas
        results = load.results

    plain = [o for o in results if not o.stream]
    streams = [o for o in results if o.stream]
    broken = [o for o in streams if o.result == ERROR_EVENT]
    after = [o for o in results if o.started > killed_at + 0.5]
    assert plain, "non-streaming load ran"
    assert {o.result for o in plain} == {OK}, [o for o in plain if o.result != OK][:3]
    assert {o.result for o in streams} <= {OK, ERROR_EVENT}, [
        o for o in streams if o.result not in (OK, ERROR_EVENT)
    ][:3]
    assert 0 < len(broken) <= in_flight_there  # only streams running on it broke
    assert after and all(o.result == OK for o in after)  # served by the two that remain
