"""One supervised child process: start, wait until healthy, restart with backoff, stop.

Each child runs in its own session (process group), so stopping it stops everything it
spawned (vLLM's workers included), and asks the kernel to kill it if the supervisor dies
(`PR_SET_PDEATHSIG`), so no child outlives `hoist up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiohttp

from control_plane.api.liveness import RestartReason
from control_plane.local.plan import ProcessSpec
from control_plane.local.watchdog import LivenessWatch, until_restart_needed

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000


class Phase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    READY = "Ready"
    RESTARTING = "Restarting"
    FAILED = "Failed"
    STOPPED = "Stopped"


class StartError(Exception):
    """A process did not become healthy; the message carries the end of its log."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Backoff:
    """Exponential delay between restarts: 1 s, 2 s, 4 s ... capped."""

    initial_s: float = 1.0
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap_s, self.initial_s * 2 ** max(0, attempt - 1)))


class ManagedProcess:
    """Keeps one `ProcessSpec` running and reports its phase."""

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        session: aiohttp.ClientSession,
        log_dir: Path,
        env: dict[str, str],
        stop_grace_s: float,
        max_restarts: int,
        backoff: Backoff | None = None,
        on_change: Callable[[ManagedProcess], None] | None = None,
        liveness: LivenessWatch | None = None,
        on_restart: Callable[[ManagedProcess, RestartReason], None] | None = None,
    ) -> None:
        self.spec = spec
        self.phase = Phase.PENDING
        self.restarts = 0
        self.since = time.time()
        self.last_error = ""
        self.last_restart_reason: RestartReason | None = None
        """Why the supervisor last restarted it (a crash, or its liveness watch)."""
        self._session = session
        self._log_path = log_dir / (spec.name.replace("/", ".") + ".log")
        self._env = {**env, **spec.env}
        self._stop_grace_s = stop_grace_s
        self._max_restarts = max_restarts
        self._backoff = backoff or Backoff()
        self._on_change = on_change
        self._liveness = liveness
        self._on_restart = on_restart
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self._log_path

    async def start(self) -> float:
        """Start the process and wait until it is healthy; return the seconds it took.

        Raises `StartError` (after stopping the process) if it exits or times out first.
        """
        started = time.monotonic()
        self._stopping = False  # a stopped replica may be started again (scale up)
        await self._spawn(truncate_log=True)
        try:
            await self._wait_healthy()
        except StartError as exc:
            await self._kill()
            self._set(Phase.FAILED, str(exc))
            raise
        self._set(Phase.READY)
        self._watch = asyncio.create_task(self._watch_and_restart(), name=f"watch {self.spec.name}")
        return time.monotonic() - started

    async def stop(self) -> None:
        """Stop the process group: SIGTERM, the grace period, then SIGKILL. Idempotent."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._kill()
        self._set(Phase.STOPPED)

    def log_tail(self) -> str:
        try:
            with self._log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    async def _spawn(self, *, truncate_log: bool) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("wb" if truncate_log else "ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._set(Phase.STARTING)

    async def _wait_healthy(self) -> None:
        assert self._proc is not None
        url = self.spec.url + self.spec.health_path
        deadline = time.monotonic() + self.spec.ready_timeout_s
        timeout = aiohttp.ClientTimeout(total=2)
        while True:
            if self._proc.returncode is not None:
                raise StartError(self._exit_message(f"exited with code {self._proc.returncode}"))
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.get(url, timeout=timeout) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise StartError(
                    self._exit_message(f"not healthy at {url} after {self.spec.ready_timeout_s:g}s")
                )
            await asyncio.sleep(0.2)

    async def _until_down(self) -> tuple[RestartReason, str]:
        """Wait until the process exits, or (watched) its liveness verdict is a restart:
        then kill its group. Why it went down, and how to say so."""
        proc = self._proc
        assert proc is not None
        if self._liveness is None:
            return RestartReason.CRASHED, f"exited with code {await proc.wait()}"
        url = self.spec.url + self.spec.health_path
        exited = asyncio.ensure_future(proc.wait())
        hung = asyncio.ensure_future(until_restart_needed(self._session, url, self._liveness))
        try:
            await asyncio.wait({exited, hung}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                return RestartReason.CRASHED, f"exited with code {exited.result()}"
            verdict = hung.result()
        finally:
            for waiter in (exited, hung):
                waiter.cancel()
            await asyncio.gather(exited, hung, return_exceptions=True)
        _killpg(proc.pid, signal.SIGKILL)  # a frozen process ignores SIGTERM; not SIGKILL
        await proc.wait()
        return verdict.reason or RestartReason.UNRESPONSIVE, f"{verdict.message}; killed"

    async def _watch_and_restart(self) -> None:
        """After a crash or a hang, restart with backoff; give up after `max_restarts` in a
        row."""
        failures = 0
        while True:
            reason, what = await self._until_down()
            if self._stopping:
                return
            failures += 1
            self.restarts += 1
            self.last_restart_reason = reason
            if self._on_restart is not None:
                self._on_restart(self, reason)
            if failures > self._max_restarts:
                self._set(Phase.FAILED, f"{what}; gave up after {failures - 1} restarts")
                return
            self._set(Phase.RESTARTING, what)
            await asyncio.sleep(self._backoff.delay(failures))
            await self._spawn(truncate_log=False)
            try:
                await self._wait_healthy()
            except StartError as exc:
                await self._kill()
                self.last_error = str(exc)
                continue
            failures = 0
            self._set(Phase.READY)

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            _killpg(proc.pid if proc else None, signal.SIGKILL)  # leftovers of an exited leader
            return
        _killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._stop_grace_s)
        except TimeoutError:
            _killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        _killpg(proc.pid, signal.SIGKILL)  # children that ignored SIGTERM after the leader left

    def _exit_message(self, what: str) -> str:
        tail = self.log_tail()
        shown = "\n".join(tail.splitlines()[-15:])
        return f"{self.spec.name} {what} (log: {self._log_path})" + (
            f"\n--- last lines ---\n{shown}" if shown else ""
        )

    def _set(self, phase: Phase, error: str = "") -> None:
        if phase != self.phase:
            self.since = time.time()
        self.phase = phase
        if error:
            self.last_error = error
        if self._on_change is not None:
            self._on_change(self)


def _killpg(pgid: int | None, sig: signal.Signals) -> None:
    if pgid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
