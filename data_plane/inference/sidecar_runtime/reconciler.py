"""Keeps the engine holding the desired adapters: each poll observes the engine, counts its
restarts, and re-loads what it lacks (backing off per adapter). The decisions are `plan`'s;
this module calls the engine and records the outcome in the `AdapterBook`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from data_plane.inference.sidecar_runtime.adapter_book import AdapterBook
from data_plane.inference.sidecar_runtime.engine_client import (
    EngineClient,
    EngineRefusedError,
    EngineUnavailableError,
)
from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics
from data_plane.inference.sidecar_runtime.plan import (
    Desired,
    after_failure,
    loads_needed,
    observe,
    reload_still_due,
)
from data_plane.inference.sidecar_runtime.settings import SidecarSettings
from data_plane.inference.sidecar_runtime.tracing import AdapterSpans

log = logging.getLogger(__name__)


class EngineReconciler:
    """Polls one engine and re-loads the adapters it lost."""

    def __init__(
        self,
        book: AdapterBook,
        engine: EngineClient,
        metrics: SidecarMetrics,
        settings: SidecarSettings,
        *,
        clock: Callable[[], float],
        spans: AdapterSpans,
    ) -> None:
        self._book = book
        self._engine = engine
        self._metrics = metrics
        self._settings = settings
        self._clock = clock
        self._spans = spans

    async def poll(self) -> None:
        """Observe the engine once and re-load the desired adapters it lacks."""
        book = self._book
        # What the engine listed before this poll, among adapters still desired after it: an
        # adapter loaded or deleted while the poll was in flight is not mistaken for a loss.
        before = book.view.adapters & book.desired.keys()
        view = await self._engine.view()
        believed = frozenset(before & book.desired.keys())
        watch = observe(book.watch, view, believed)
        if watch.restarts > book.watch.restarts:
            log.warning("engine restart observed; re-loading %d adapter(s)", len(book.desired))
            self._metrics.engine_restarts.inc(watch.restarts - book.watch.restarts)
        book.watch = watch
        book.view = view
        for load in loads_needed(book.desired, view, book.retries, now=self._clock()):
            async with book.lock(load.name):
                want = book.desired.get(load.name)
                if want is None or not reload_still_due(load, want, book.view):
                    continue
                await self._reload(want)
        book.update_gauges()

    async def _reload(self, want: Desired) -> None:
        book = self._book
        try:
            with self._spans.load(want.name):
                await self._engine.load(want.name, want.path)
        except (EngineRefusedError, EngineUnavailableError) as exc:
            self._metrics.adapter_loads.labels("failure").inc()
            self._metrics.adapter_failures.labels("ReloadFailed").inc()
            book.retries[want.name] = after_failure(
                book.retries.get(want.name),
                str(exc),
                now=self._clock(),
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_cap_seconds,
            )
            log.warning("re-load of %s failed: %s", want.name, exc)
            return
        self._metrics.adapter_loads.labels("success").inc()
        book.retries.pop(want.name, None)
        book.mark_loaded(want.name)
        log.info("adapter %s re-loaded", want.name)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("poll failed")
            await asyncio.sleep(self._settings.poll_interval_seconds)
