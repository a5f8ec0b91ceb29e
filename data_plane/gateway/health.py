"""Health of one replica: passive (real requests), active (probes), latency (pure).

Time is passed in (monotonic seconds), so tests drive it without sleeping.

Passive:

- A connection failure ejects at once (nothing listens there).
- Timeouts and 5xx answers eject after `failures_to_eject` in a row.
- An ejected replica is left alone for `cooldown_s`, doubled on every ejection that follows
  a re-admission without a success in between (up to `max_cooldown_s`).
- After the cool-down it is on probation: routable again; one success clears its record,
  one failure ejects it again with the longer cool-down.

Active (the gateway's probe, runtime's watchdog): `failures_to_eject` failed probes in a
row mark the replica hung: out of rotation, with no cool-down, until a probe succeeds
again; it then comes back on probation. A hung replica is not the same as an ejected one:
it is out until it answers, however long that takes.

Latency (outliers.py decides): `eject` takes a slow replica out for a cool-down, as a
failure would, and it comes back on probation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Failure(StrEnum):
    CONNECT = "connect"
    TIMEOUT = "timeout"
    STATUS = "status"
    """A 5xx answer."""
    STALL = "stall"
    """A started stream went silent for longer than its stall bound."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    failures_to_eject: int = 3
    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0


class PassiveHealth:
    __slots__ = (
        "_cooldown",
        "_ejected_until",
        "_probation",
        "consecutive_failures",
        "failed_probes",
        "hung",
        "policy",
    )

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self.consecutive_failures = 0
        self._ejected_until: float | None = None
        self._cooldown = policy.cooldown_s
        self._probation = False
        self.hung = False
        """Out of rotation until a probe succeeds (see `record_probe`)."""
        self.failed_probes = 0

    def available(self, now: float) -> bool:
        if self.hung:
            return False
        until = self._ejected_until
        if until is None:
            return True
        if now < until:
            return False
        self._ejected_until = None
        self._probation = True
        return True

    @property
    def ejected(self) -> bool:
        return self.hung or self._ejected_until is not None

    def record_success(self) -> None:
        self.consecutive_failures = 0
        if self._probation:
            self._probation = False
            self._cooldown = self.policy.cooldown_s

    def record_failure(self, kind: Failure, now: float) -> bool:
        """Count a failure; True when it ejects the replica now."""
        if self.hung or self._ejected_until is not None:
            return False  # already out (a request that started before the ejection)
        self.consecutive_failures += 1
        if not (
            self._probation
            or kind is Failure.CONNECT
            or self.consecutive_failures >= self.policy.failures_to_eject
        ):
            return False
        return self.eject(now)

    def eject(self, now: float) -> bool:
        """Out for the cool-down (longer after a failed probation); False when already out."""
        if self.hung or self._ejected_until is not None:
            return False
        if self._probation:
            self._cooldown = min(self._cooldown * 2, self.policy.max_cooldown_s)
        self._probation = False
        self._ejected_until = now + self._cooldown
        self.consecutive_failures = 0
        return True

    def record_probe(self, ok: bool, failures_to_eject: int) -> bool | None:
        """Count one probe: True when it marks the replica hung now, False when a hung
        replica answered again (back on probation), None when nothing changed."""
        if ok:
            self.failed_probes = 0
            if not self.hung:
                return None
            self.hung = False
            self._ejected_until = None
            self._probation = True
            self.consecutive_failures = 0
            return False
        self.failed_probes += 1
        if self.hung or self.failed_probes < failures_to_eject:
            return None
        self.hung = True
        return True
