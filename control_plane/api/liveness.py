"""When an engine counts as hung, and when it is still starting (pure; shared contract).

One decision, three watchers: the embedded supervisor (`hoist up`), engine_api's own
supervisor of vLLM, and the sidecar's `/livez/engine` (the engine container's liveness
probe on Kubernetes) feed their `/health` probe outcomes into `observe` and act on `judge`.

The rule that keeps a watchdog from fighting a slow model load: an engine that has not
answered once since it (re)started is *starting*, bounded only by `start_timeout_s`; an
engine that answered and then stops answering (timeouts, errors, a process alive but
frozen: SIGSTOP, a wedged CUDA context) is *unresponsive*, and restarted once it has
missed `min_failures` probes in a row and `unresponsive_after_s` seconds have passed since
its last answer. A refused connection after health means the server is gone from its port
(it is restarting under its own supervisor): that is a new start, not a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Probe(StrEnum):
    OK = "ok"
    """`/health` answered 200 within the probe timeout."""
    REFUSED = "refused"
    """Nothing listens on the port (not started yet, or restarting)."""
    FAILED = "failed"
    """Accepted but no answer in time, a reset, or a non-200 answer."""


class Liveness(StrEnum):
    STARTING = "Starting"
    HEALTHY = "Healthy"
    UNRESPONSIVE = "Unresponsive"
    """Missed probes, still within the bound: not restarted yet."""
    HUNG = "Hung"
    """Unresponsive past the bound: restart it."""
    START_TIMED_OUT = "StartTimedOut"
    """Never answered within `start_timeout_s`: restart it."""


class RestartReason(StrEnum):
    """Why a watcher restarted a process (a bounded metric label)."""

    CRASHED = "crashed"
    UNRESPONSIVE = "unresponsive"
    START_TIMEOUT = "start_timeout"


@dataclass(frozen=True)
class LivenessPolicy:
    unresponsive_after_s: float = 10.0
    """A healthy engine that has not answered for this long is hung and restarted."""
    min_failures: int = 3
    """...and only after this many failed probes in a row (a stalled watcher is no hang)."""
    start_timeout_s: float = 900.0
    """A start that never answered for this long is restarted (vLLM on CPU takes ~60 s)."""


@dataclass(frozen=True)
class History:
    """What the watcher saw since the engine's current start (monotonic seconds)."""

    started_at: float
    last_ok_at: float | None = None
    """None: has not answered since it started."""
    failures: int = 0
    """Probes failed in a row since the last answer."""

    @classmethod
    def healthy_at(cls, now: float) -> History:
        """The history of an engine that was just seen healthy (a start that completed)."""
        return cls(started_at=now, last_ok_at=now)


@dataclass(frozen=True)
class Verdict:
    state: Liveness
    message: str

    @property
    def restart(self) -> bool:
        return self.state in (Liveness.HUNG, Liveness.START_TIMED_OUT)

    @property
    def reason(self) -> RestartReason | None:
        if self.state is Liveness.HUNG:
            return RestartReason.UNRESPONSIVE
        if self.state is Liveness.START_TIMED_OUT:
            return RestartReason.START_TIMEOUT
        return None


def observe(history: History, probe: Probe, now: float) -> History:
    """The history after one probe at `now`."""
    if probe is Probe.OK:
        return replace(history, last_ok_at=now, failures=0)
    if probe is Probe.REFUSED and history.last_ok_at is not None:
        return History(started_at=now)  # gone from its port: it is starting again
    return replace(history, failures=history.failures + 1)


def judge(policy: LivenessPolicy, history: History, now: float) -> Verdict:
    """Whether the engine is starting, healthy, unresponsive, or to be restarted."""
    if history.last_ok_at is None:
        waited = now - history.started_at
        if waited > policy.start_timeout_s:
            return Verdict(
                Liveness.START_TIMED_OUT,
                f"not healthy {waited:.0f}s after it started (bound {policy.start_timeout_s:g}s)",
            )
        return Verdict(Liveness.STARTING, f"starting for {waited:.0f}s")
    if history.failures == 0:
        return Verdict(Liveness.HEALTHY, "answers /health")
    silent = now - history.last_ok_at
    if history.failures >= policy.min_failures and silent >= policy.unresponsive_after_s:
        return Verdict(
            Liveness.HUNG,
            f"unresponsive: no answer to /health for {silent:.1f}s"
            f" ({history.failures} probes; bound {policy.unresponsive_after_s:g}s)",
        )
    return Verdict(
        Liveness.UNRESPONSIVE, f"missed {history.failures} probes ({silent:.1f}s without an answer)"
    )
