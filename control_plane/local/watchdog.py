"""The supervisor's liveness watch of one ready process: probe `/health`, judge, report.

The decision is `control_plane.api.liveness` (shared with engine_api and the sidecar); this
module only probes on an interval and returns the verdict that calls for a restart.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from control_plane.api.liveness import History, LivenessPolicy, Probe, Verdict, judge, observe


@dataclass(frozen=True)
class LivenessWatch:
    """How a supervised process is watched once it is ready."""

    policy: LivenessPolicy
    interval_s: float = 1.0
    """Seconds between probes."""
    probe_timeout_s: float = 2.0
    """A probe not answered within this is a failed probe."""


async def probe_health(session: aiohttp.ClientSession, url: str, timeout_s: float) -> Probe:
    """One `GET url`: OK on 200, REFUSED when nothing listens, FAILED otherwise."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            return Probe.OK if response.status == 200 else Probe.FAILED
    except aiohttp.ClientConnectorError as exc:
        return Probe.REFUSED if isinstance(exc.os_error, ConnectionRefusedError) else Probe.FAILED
    except (aiohttp.ClientError, TimeoutError):
        return Probe.FAILED


async def until_restart_needed(
    session: aiohttp.ClientSession, url: str, watch: LivenessWatch
) -> Verdict:
    """Probe `url` until the verdict is a restart (the caller races this with the exit)."""
    history = History.healthy_at(time.monotonic())
    while True:
        await asyncio.sleep(watch.interval_s)
        probe = await probe_health(session, url, watch.probe_timeout_s)
        now = time.monotonic()
        history = observe(history, probe, now)
        verdict = judge(watch.policy, history, now)
        if verdict.restart:
            return verdict
