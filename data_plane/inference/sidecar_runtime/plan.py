"""What the sidecar should do, given what it wants loaded and what the engine reports (pure).

The sidecar keeps a *desired* set (adapters fetched and accepted by `PUT`) and observes the
engine (`/health`, `/v1/models`). These functions turn the two into actions and status; the
reconciler only executes them. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum


class Phase(StrEnum):
    LOADING = "Loading"
    """Desired, fetched, and not (or no longer) in the engine; a load is pending or retrying."""
    LOADED = "Loaded"
    """Desired and listed by the engine's `/v1/models`."""
    FAILED = "Failed"
    """Refused: not desired; `reason` and `message` say why."""


@dataclass(frozen=True)
class Desired:
    name: str
    path: str
    """Where the fetched adapter lies, as the engine will read it."""
    source: str
    sha256: str
    """Digest of what was fetched (the archive, or the tree digest of a directory)."""


@dataclass(frozen=True)
class Retry:
    attempts: int
    not_before: float
    """Monotonic time before which no new load is tried."""
    message: str


@dataclass(frozen=True)
class EngineView:
    healthy: bool
    adapters: frozenset[str]
    """Adapter ids listed by `/v1/models` (entries with a `parent`); empty when unhealthy."""


@dataclass(frozen=True)
class EngineWatch:
    """What the sidecar remembers about the engine between two polls."""

    healthy: bool = False
    ever_healthy: bool = False
    restarts: int = 0
    """Restarts seen: the engine came back after being down, or lost adapters it held."""


@dataclass(frozen=True)
class Load:
    name: str
    path: str


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds to wait after `attempts` consecutive failures (exponential, capped)."""
    if attempts <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(attempts - 1, 32)))


def after_failure(
    previous: Retry | None, message: str, *, now: float, base: float, cap: float
) -> Retry:
    attempts = (previous.attempts if previous else 0) + 1
    return Retry(attempts, now + retry_delay(attempts, base=base, cap=cap), message)


def observe(watch: EngineWatch, view: EngineView, believed_loaded: frozenset[str]) -> EngineWatch:
    """Fold one poll into `watch`, counting restarts.

    `believed_loaded` are the adapters the engine listed at the previous poll: if a healthy
    engine no longer lists some of them, it restarted between two polls.
    """
    came_back = view.healthy and not watch.healthy and watch.ever_healthy
    lost = view.healthy and watch.healthy and not believed_loaded <= view.adapters
    return EngineWatch(
        healthy=view.healthy,
        ever_healthy=watch.ever_healthy or view.healthy,
        restarts=watch.restarts + (1 if came_back or lost else 0),
    )


def loads_needed(
    desired: Mapping[str, Desired],
    view: EngineView,
    retries: Mapping[str, Retry],
    *,
    now: float,
) -> list[Load]:
    """The desired adapters the engine lacks and whose back-off has passed, by name."""
    if not view.healthy:
        return []
    return [
        Load(name, want.path)
        for name, want in sorted(desired.items())
        if name not in view.adapters and (name not in retries or retries[name].not_before <= now)
    ]


def already_serving(
    current: Desired | None, source: str, sha256: str | None, view: EngineView
) -> bool:
    """A PUT asks for what the engine serves now: the same source, no digest or the same
    one, and the engine lists the adapter. Nothing to fetch or load."""
    return (
        current is not None
        and current.source == source
        and sha256 in (None, current.sha256)
        and view.healthy
        and current.name in view.adapters
    )


def reload_still_due(load: Load, want: Desired, view: EngineView) -> bool:
    """A planned re-load, checked again once its adapter's lock is held: `want` (what is
    desired under its name now) has the same path, and the engine (as last seen) still
    lacks it."""
    return want.path == load.path and load.name not in view.adapters


@dataclass(frozen=True)
class AdapterReport:
    name: str
    phase: Phase
    source: str
    sha256: str | None = None
    reason: str | None = None
    message: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class Refusal:
    source: str
    reason: str
    message: str


def report(
    desired: Mapping[str, Desired],
    view: EngineView,
    retries: Mapping[str, Retry],
    refused: Mapping[str, Refusal],
) -> dict[str, AdapterReport]:
    """Status per adapter: loaded only if the engine lists it right now."""
    out: dict[str, AdapterReport] = {}
    for name, refusal in refused.items():
        out[name] = AdapterReport(
            name, Phase.FAILED, refusal.source, reason=refusal.reason, message=refusal.message
        )
    for name, want in desired.items():
        base = AdapterReport(name, Phase.LOADING, want.source, want.sha256)
        if view.healthy and name in view.adapters:
            out[name] = replace(base, phase=Phase.LOADED)
        elif name in retries:
            retry = retries[name]
            out[name] = replace(
                base, reason="LoadFailed", message=retry.message, attempts=retry.attempts
            )
        elif not view.healthy:
            out[name] = replace(
                base, reason="EngineNotReady", message="waiting for the engine to be ready"
            )
        else:
            out[name] = replace(base, reason="Pending", message="load pending")
    return dict(sorted(out.items()))
