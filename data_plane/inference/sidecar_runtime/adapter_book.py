"""The sidecar's record of its adapters: the desired set (persisted in `state.json`, so a
restarted sidecar resumes it), load retries, refusals, the engine as last seen, and a lock
per adapter name that serializes operations on it. The gauges follow the record."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, replace
from pathlib import Path

import orjson

from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics
from data_plane.inference.sidecar_runtime.plan import (
    AdapterReport,
    Desired,
    EngineView,
    EngineWatch,
    Refusal,
    Retry,
    report,
)
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError

log = logging.getLogger(__name__)


class AdapterBook:
    """What the sidecar wants loaded and what it knows about the engine."""

    def __init__(self, state_file: Path, metrics: SidecarMetrics) -> None:
        self.state_file = state_file
        self._metrics = metrics
        self.desired: dict[str, Desired] = {}
        self.retries: dict[str, Retry] = {}
        self.refused: dict[str, Refusal] = {}
        self.view = EngineView(healthy=False, adapters=frozenset())
        self.watch = EngineWatch()
        self.locks: dict[str, asyncio.Lock] = {}

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.setdefault(name, asyncio.Lock())

    def reports(self) -> dict[str, AdapterReport]:
        return report(self.desired, self.view, self.retries, self.refused)

    def report_of(self, name: str) -> AdapterReport | None:
        return self.reports().get(name)

    def must_report(self, name: str) -> AdapterReport:
        found = self.report_of(name)
        assert found is not None, name
        return found

    def restore(self) -> None:
        """Resume the desired set a previous sidecar process saved (start-up only)."""
        path = self.state_file
        if not path.exists():
            return
        try:
            entries = orjson.loads(path.read_bytes())["desired"]
            for entry in entries:
                want = Desired(**entry)
                if Path(want.path).is_dir():
                    self.desired[want.name] = want
                else:
                    log.warning("adapter %s: %s is gone; not restored", want.name, want.path)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
        self.update_gauges()

    def save(self) -> None:
        """Write the desired set atomically (a crash leaves the old or the new file)."""
        path = self.state_file
        tmp = path.with_suffix(".tmp")
        doc = {"desired": [asdict(d) for d in self.desired.values()]}
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        tmp.replace(path)
        self.update_gauges()

    def update_gauges(self) -> None:
        self._metrics.adapters_desired.set(len(self.desired))
        loaded = self.view.adapters & self.desired.keys() if self.view.healthy else set()
        self._metrics.adapters_loaded.set(len(loaded))
        self._metrics.engine_up.set(1 if self.view.healthy else 0)

    def refuse(self, name: str, source: str, refusal: AdapterRefusedError, *, record: bool) -> None:
        """Count and log a refusal; `record`: report the adapter Failed with its reason."""
        self._metrics.adapter_failures.labels(refusal.reason).inc()
        if record:
            self.refused[name] = Refusal(source, refusal.reason, refusal.message)
        log.warning("adapter %s refused (%s): %s", name, refusal.reason, refusal.message)

    def mark_loaded(self, name: str) -> None:
        self.view = replace(self.view, adapters=self.view.adapters | {name})

    def mark_unloaded(self, name: str) -> None:
        self.view = replace(self.view, adapters=self.view.adapters - {name})
