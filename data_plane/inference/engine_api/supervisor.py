"""Start vLLM, wait for it to be ready, watch it, restart it with back-off, stop it cleanly.

vLLM runs in its own process group (its engine core and workers are child processes), so
a stop signals the whole group: SIGTERM, then SIGKILL after a grace period. On Linux the
engine also gets SIGTERM if engine_api itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

import aiohttp

from control_plane.api.liveness import (
    History,
    LivenessPolicy,
    Probe,
    RestartReason,
    judge,
    observe,
)
from data_plane.inference.engine_api.metrics import EngineMetrics
from data_plane.inference.engine_api.restart_policy import GiveUp, RestartPolicy, decide

log = logging.getLogger(__name__)

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EngineSupervisor:
    def __init__(
        self,
        *,
        python: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        health_url: str,
        policy: RestartPolicy,
        metrics: EngineMetrics,
        start_timeout: float,
        health_interval: float,
        liveness: LivenessPolicy,
        health_timeout: float,
        stop_grace: float,
    ) -> None:
        self._cmd = [python, "-m", VLLM_SERVER_MODULE, *argv]
        self._env = {**os.environ, **env}
        self._health_url = health_url
        self._policy = policy
        self._metrics = metrics
        self._start_timeout = start_timeout
        self._interval = health_interval
        self._liveness = liveness
        self._health_timeout = health_timeout
        self._stop_grace = stop_grace
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, stop: asyncio.Event) -> int:
        """Keep the engine running until `stop` is set (0) or the policy gives up (1)."""
        failed_starts = 0
        restarts = 0
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._health_timeout)
        ) as http:
            while not stop.is_set():
                started = time.monotonic()
                proc = await self._spawn()
                ready = await self._wait_ready(proc, http, stop, started)
                ready_since = time.monotonic()
                if ready:
                    load_time = ready_since - started
                    self._metrics.model_load_time.set(load_time)
                    self._metrics.engine_starts.labels("ready").inc()
                    self._metrics.engine_ready.set(1)
                    log.info("engine ready in %.1f s (pid %d)", load_time, proc.pid)
                    failed_starts = 0
                    hung = await self._watch(proc, http, stop)
                    self._metrics.engine_ready.set(0)
                    reason = RestartReason.UNRESPONSIVE if hung else RestartReason.CRASHED
                    if not stop.is_set():
                        self._metrics.watchdog_restarts.labels(reason.value).inc()
                if stop.is_set():
                    await self._stop(proc)
                    return 0
                if not ready:
                    self._metrics.engine_starts.labels("failed").inc()
                    failed_starts += 1
                await self._stop(proc)
                ready_seconds = time.monotonic() - ready_since if ready else 0.0
                decision = decide(
                    self._policy,
                    exit_code=proc.returncode,
                    became_ready=ready,
                    ready_seconds=ready_seconds,
                    failed_starts=failed_starts,
                    restarts=restarts,
                )
                if isinstance(decision, GiveUp):
                    log.error("giving up on the engine: %s", decision.reason)
                    return 1
                long_run = ready and ready_seconds >= self._policy.healthy_reset_seconds
                restarts = (0 if long_run else restarts) + 1
                log.warning(
                    "engine exited (status %s); restarting in %.1f s",
                    proc.returncode,
                    decision.delay_seconds,
                )
                self._metrics.engine_restarts.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), decision.delay_seconds)
        return 0

    async def _spawn(self) -> asyncio.subprocess.Process:
        log.info("starting the engine: %s", " ".join(self._cmd))
        self.process = await asyncio.create_subprocess_exec(
            *self._cmd,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return self.process

    async def _probe(self, http: aiohttp.ClientSession) -> Probe:
        try:
            async with http.get(self._health_url) as resp:
                return Probe.OK if resp.status == 200 else Probe.FAILED
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            return Probe.REFUSED if refused else Probe.FAILED
        except (aiohttp.ClientError, TimeoutError):
            return Probe.FAILED

    async def _healthy(self, http: aiohttp.ClientSession) -> bool:
        return await self._probe(http) is Probe.OK

    async def _wait_ready(
        self,
        proc: asyncio.subprocess.Process,
        http: aiohttp.ClientSession,
        stop: asyncio.Event,
        started: float,
    ) -> bool:
        while not stop.is_set() and proc.returncode is None:
            if time.monotonic() - started > self._start_timeout:
                log.error("engine not ready after %.0f s", self._start_timeout)
                return False
            if await self._healthy(http):
                return True
            await _sleep_or(stop, proc, self._interval)
        return False

    async def _watch(
        self, proc: asyncio.subprocess.Process, http: aiohttp.ClientSession, stop: asyncio.Event
    ) -> bool:
        """Watch a ready engine until it exits, `stop` is set, or it hangs (True)."""
        history = History.healthy_at(time.monotonic())
        while not stop.is_set() and proc.returncode is None:
            await _sleep_or(stop, proc, self._interval)
            if stop.is_set() or proc.returncode is not None:
                return False
            probe = await self._probe(http)
            now = time.monotonic()
            history = observe(history, probe, now)
            verdict = judge(self._liveness, history, now)
            if verdict.restart:
                log.error("engine %s; restarting it", verdict.message)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # frozen: SIGTERM would wait
                return True
        return False

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """Stop the engine's whole process group: SIGTERM, then SIGKILL after the grace."""
        pgid = proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_grace
        # The group's other members are not our children: nothing to await but time.
        while _group_alive(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if _group_alive(pgid):
            log.warning("engine ignored SIGTERM for %.0f s; killing it", self._stop_grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        await proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _sleep_or(stop: asyncio.Event, proc: asyncio.subprocess.Process, seconds: float) -> None:
    """Sleep `seconds`, waking early when `stop` is set or the process exits."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(proc.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
