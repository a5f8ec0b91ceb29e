"""A hung engine (SIGSTOP) under steady load: detected, ejected, nobody waits for it.

The bound a request may wait is derived from the settings: the probe's detection bound
(liveness.hang_detection_bound_s) plus one retry elsewhere. The hang lasts well over that,
so a request that waited for the hung engine to come back would show it.
"""

from __future__ import annotations

import asyncio
import signal
import time

from data_plane.gateway.liveness import ProbePolicy, hang_detection_bound_s
from tests.support.fault_load import ERROR_EVENT, OK, SteadyLoad
from tests.support.gateway import run_gateway
from tests.support.simulator import SimProcess
from tests.support.waiting import wait_until

PROBE = ProbePolicy(interval_s=0.5, timeout_s=0.5, failures_to_eject=2)
HANG_S = 12.0
RETRY_S = 1.0
"""Longest a retried request takes elsewhere (32 tokens at 80 tokens/s, and some)."""
SLACK_S = 3.0
"""For a loaded 2-core machine."""


async def test_a_hung_replica_is_ejected_and_nobody_waits_for_it(
    sim_processes: list[SimProcess],
) -> None:
    bound = hang_detection_bound_s(PROBE)
    # The hang is long enough to tell waiting for it from not waiting.
    assert bound + RETRY_S + SLACK_S < HANG_S - 2.0
    upstreams = [f"sim={','.join(s.urls[0] for s in sim_processes)}"]
    async with run_gateway(
        discovery="static",
        upstreams=upstreams,
        load_poll_interval_s=0.5,
        health_probe_interval_s=PROBE.interval_s,
        health_probe_timeout_s=PROBE.timeout_s,
        health_probe_failures=PROBE.failures_to_eject,
        stall_floor_s=1.0,
        stall_sweep_interval_s=0.25,
    ) as gw:
        fleet = gw.gateway.fleet
        hung_replica = next(r for r in fleet.replicas() if r.url == sim_processes[0].urls[0])
        async with SteadyLoad(gw.url, clients=20) as load:
            await wait_until(lambda: len(load.results) >= 100, timeout_s=30)
            stopped_at = time.monotonic()
            sim_processes[0].process.send_signal(signal.SIGSTOP)
            await wait_until(lambda: hung_replica.health.hung, timeout_s=HANG_S)
            detected_after = time.monotonic() - stopped_at
            await asyncio.sleep(max(0.0, HANG_S - (time.monotonic() - stopped_at)))
            served_before = hung_replica.last_ok
            sim_processes[0].process.send_signal(signal.SIGCONT)
            continued_at = time.monotonic()
            await wait_until(lambda: not hung_replica.health.hung, timeout_s=10)
            await wait_until(lambda: hung_replica.last_ok > served_before, timeout_s=10)
        results = load.results
        # The engines' own timing reached the gateway (derived timeouts, stall bounds).
        assert all(r.timing.itl_s is not None for r in fleet.replicas())
        assert all(r.timing.ttft_s is not None for r in fleet.replicas())

    during = [o for o in results if o.started < continued_at and o.ended > stopped_at]
    plain = [o for o in results if not o.stream]
    streams = [o for o in results if o.stream]
    assert len(during) > 50, "the load kept going through the hang"
    assert {o.result for o in plain} == {OK}, [o for o in plain if o.result != OK][:3]
    # A stream already started on the hung engine ends with an error event; none is lost.
    assert {o.result for o in streams} <= {OK, ERROR_EVENT}
    assert sum(o.result == ERROR_EVENT for o in streams) <= 20  # at most those in flight
    # Detection within the derived bound (with slack for a loaded machine), and no request
    # waited for the hung engine to come back.
    assert detected_after < bound + SLACK_S
    longest = max(o.latency for o in results)
    assert longest < HANG_S - 2.0
    assert longest < bound + RETRY_S + SLACK_S  # caught on the hung engine, then one retry
