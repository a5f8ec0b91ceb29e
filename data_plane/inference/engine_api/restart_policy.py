"""When the supervisor restarts the engine, and when it gives up (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Restart:
    delay_seconds: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True)
class RestartPolicy:
    base_seconds: float = 2
    cap_seconds: float = 60
    max_failed_starts: int = 3
    """Consecutive starts that never became ready before the supervisor gives up."""
    healthy_reset_seconds: float = 300
    """A run that stayed ready this long resets the back-off."""


ARGUMENT_ERROR = 2
"""vLLM's (argparse's) exit status for a command line it does not accept."""


def decide(
    policy: RestartPolicy,
    *,
    exit_code: int | None,
    became_ready: bool,
    ready_seconds: float,
    failed_starts: int,
    restarts: int,
) -> Restart | GiveUp:
    """What to do after the engine exited (or a start timed out: `exit_code` None).

    `failed_starts` counts consecutive starts that never became ready, this one included;
    `restarts` counts earlier restarts since the back-off was last reset.
    """
    if not became_ready and exit_code == ARGUMENT_ERROR:
        return GiveUp("the engine refused its command line (exit status 2); see its log")
    if not became_ready and failed_starts >= policy.max_failed_starts:
        return GiveUp(f"the engine failed to become ready {failed_starts} times in a row")
    attempt = 0 if became_ready and ready_seconds >= policy.healthy_reset_seconds else restarts
    delay = min(policy.cap_seconds, policy.base_seconds * 2 ** min(attempt, 32))
    return Restart(delay)
