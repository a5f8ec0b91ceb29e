"""The engine's liveness as the sidecar judges it: what `/livez/engine` answers.

On Kubernetes the engine container's livenessProbe asks the sidecar, not the engine: the
sidecar probes the engine's `/health` on its own short interval and applies the shared
rule (`control_plane.api.liveness`): a start, however slow, is live; an engine that
answered and then went silent past `engine_unresponsive_after_seconds` is not, and the
kubelet restarts the engine container (the startupProbe guards the load that follows).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from control_plane.api.liveness import History, Liveness, LivenessPolicy, Probe, Verdict, judge
from control_plane.api.liveness import observe as observe_probe
from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics

log = logging.getLogger(__name__)


class EngineLiveness:
    def __init__(
        self,
        health_url: str,
        http: aiohttp.ClientSession,
        metrics: SidecarMetrics,
        *,
        policy: LivenessPolicy,
        interval_s: float,
        probe_timeout_s: float,
    ) -> None:
        self._url = health_url
        self._http = http
        self._metrics = metrics
        self._policy = policy
        self._interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=probe_timeout_s)
        self._history = History(started_at=time.monotonic())
        self._state = Liveness.STARTING

    def verdict(self) -> Verdict:
        return judge(self._policy, self._history, time.monotonic())

    async def probe(self) -> Probe:
        try:
            async with self._http.get(self._url, timeout=self._timeout) as response:
                return Probe.OK if response.status == 200 else Probe.FAILED
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            return Probe.REFUSED if refused else Probe.FAILED
        except (aiohttp.ClientError, TimeoutError):
            return Probe.FAILED

    def observe(self, probe: Probe) -> Verdict:
        """Record one probe; count and log a change of state."""
        now = time.monotonic()
        self._history = observe_probe(self._history, probe, now)
        verdict = judge(self._policy, self._history, now)
        if verdict.state is not self._state:
            if verdict.state is Liveness.HUNG:
                self._metrics.engine_hangs.inc()
                log.error("engine %s: /livez/engine now fails", verdict.message)
            elif self._state is Liveness.HUNG:
                log.warning("engine answers again (%s)", verdict.state)
            self._state = verdict.state
        self._metrics.engine_live.set(0 if verdict.restart else 1)
        return verdict

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            self.observe(await self.probe())
            await asyncio.sleep(self._interval_s)
