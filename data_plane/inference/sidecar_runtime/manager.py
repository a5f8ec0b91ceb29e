"""The sidecar's shell: keeps the desired adapters loaded in the engine.

`put` and `delete` serve the adapter API; the `EngineReconciler` (`run`) observes the
engine and re-loads what it lost (after a restart, say). Decisions come from `plan`; the
record of what is desired lives in the `AdapterBook`; this module only executes.
Operations on one adapter are serialized by the book's per-name lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

from control_plane.api.adapter_sources import SourceRefusedError, check_source
from data_plane.inference.sidecar_runtime.adapter_book import AdapterBook
from data_plane.inference.sidecar_runtime.engine_client import (
    EngineClient,
    EngineRefusedError,
    EngineUnavailableError,
)
from data_plane.inference.sidecar_runtime.fetch import AdapterStore
from data_plane.inference.sidecar_runtime.metrics import SidecarMetrics
from data_plane.inference.sidecar_runtime.plan import (
    AdapterReport,
    Desired,
    after_failure,
    already_serving,
)
from data_plane.inference.sidecar_runtime.reconciler import EngineReconciler
from data_plane.inference.sidecar_runtime.settings import SidecarSettings
from data_plane.inference.sidecar_runtime.source_guard import refused
from data_plane.inference.sidecar_runtime.sources import (
    AdapterRefusedError,
    SourceCredentials,
    check_name,
    check_sha256,
    parse_source,
)
from data_plane.inference.sidecar_runtime.tracing import AdapterSpans

log = logging.getLogger(__name__)


class AdapterManager:
    def __init__(
        self,
        settings: SidecarSettings,
        store: AdapterStore,
        engine: EngineClient,
        metrics: SidecarMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        spans: AdapterSpans | None = None,
    ) -> None:
        self._settings = settings
        self.spans = spans or AdapterSpans(None)
        """A span per fetch and load (tracing.py), when tracing is on."""
        self._store = store
        self._engine = engine
        self._metrics = metrics
        self._clock = clock
        self._book = AdapterBook(store.state_file, metrics)
        self._reconciler = EngineReconciler(
            self._book, engine, metrics, settings, clock=clock, spans=self.spans
        )
        self._draining = False

    # -- state -------------------------------------------------------------------------

    @property
    def engine_healthy(self) -> bool:
        return self._book.view.healthy

    @property
    def restarts_seen(self) -> int:
        return self._book.watch.restarts

    def reports(self) -> dict[str, AdapterReport]:
        return self._book.reports()

    def report_of(self, name: str) -> AdapterReport | None:
        return self._book.report_of(name)

    def restore(self) -> None:
        """Clear what an interrupted fetch left, and resume the desired set a previous
        sidecar process saved (start-up only)."""
        self._store.clean_staging()
        self._book.restore()

    async def run(self) -> None:
        """Reconcile the engine with the desired set until cancelled."""
        await self._reconciler.run()

    # -- the adapter API ----------------------------------------------------------------

    async def put(
        self,
        name: str,
        source: str,
        sha256: str | None,
        tenant: str | None = None,
        *,
        credentials: SourceCredentials | None = None,
    ) -> tuple[int, AdapterReport]:
        """Fetch, verify and load `name` (for `tenant`, whose `{tenant}` source roots then
        apply; with `credentials` for this fetch only); the HTTP status and the report.

        Raises `AdapterRefusedError` with a reason; an adapter already serving under `name`
        keeps serving when the new source is refused before it reaches the engine.
        """
        if self._draining:
            raise AdapterRefusedError("Draining", "the sidecar is shutting down", status=503)
        check_name(name)
        try:
            check_sha256(sha256)
            try:
                check_source(
                    source, self._store.policy, tenant=tenant, forbidden=self._store.forbidden
                )
            except SourceRefusedError as refusal:
                raise refused(refusal) from None
            parsed = parse_source(source, adapter_dir=PurePosixPath(self._store.directory))
        except AdapterRefusedError as refusal:
            self._book.refuse(name, source, refusal, record=False)
            raise
        async with self._book.lock(name):
            current = self._book.desired.get(name)
            if already_serving(current, source, sha256, self._book.view):
                return 200, self._book.must_report(name)
            started = self._clock()
            try:
                with self.spans.fetch(name, source) as step:
                    staged = await self._store.fetch(
                        parsed, expected_sha256=sha256, tenant=tenant, credentials=credentials
                    )
                    step.fetched(staged.size)
            except AdapterRefusedError as refusal:
                self._book.refuse(name, source, refusal, record=current is None)
                raise
            self._metrics.adapter_fetched_bytes.inc(staged.size)
            if current is not None and current.sha256 == staged.sha256:
                self._store.discard(staged)
                want = replace(current, source=source)
            else:
                path = await asyncio.to_thread(self._store.install, name, staged)
                want = Desired(name, str(path), source, staged.sha256)
                if current is not None:
                    await self._unload_quietly(name)
            status = await self._load_new(want, current)
            self._metrics.adapter_load_seconds.observe(self._clock() - started)
            return status, self._book.must_report(name)

    async def _load_new(self, want: Desired, previous: Desired | None) -> int:
        name = want.name
        try:
            with self.spans.load(name):
                await self._engine.load(name, want.path)
        except EngineRefusedError as exc:
            self._metrics.adapter_loads.labels("failure").inc()
            await asyncio.to_thread(self._store.remove_version, name, want.path)
            if previous is not None and previous.path != want.path:
                with contextlib.suppress(EngineRefusedError, EngineUnavailableError):
                    await self._engine.load(name, previous.path)
            refusal = AdapterRefusedError(
                "EngineRefused", f"the engine refused the adapter: {exc}", status=422
            )
            self._book.refuse(name, want.source, refusal, record=previous is None)
            raise refusal from exc
        except EngineUnavailableError as exc:
            self._metrics.adapter_loads.labels("failure").inc()
            self._accept(want, previous)
            self._book.retries[name] = after_failure(
                None,
                str(exc),
                now=self._clock(),
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_cap_seconds,
            )
            self._book.save()
            return 202
        self._metrics.adapter_loads.labels("success").inc()
        self._accept(want, previous)
        self._book.mark_loaded(name)
        self._book.save()
        return 200

    def _accept(self, want: Desired, previous: Desired | None) -> None:
        book = self._book
        book.desired[want.name] = want
        book.refused.pop(want.name, None)
        book.retries.pop(want.name, None)
        if previous is not None and previous.path != want.path:
            self._store.remove_version(want.name, previous.path)

    async def _unload_quietly(self, name: str) -> None:
        with contextlib.suppress(EngineRefusedError, EngineUnavailableError):
            await self._engine.unload(name)

    async def delete(self, name: str) -> bool:
        """Unload and forget `name`; False when it is unknown."""
        check_name(name)
        async with self._book.lock(name):
            if name not in self._book.desired and name not in self._book.refused:
                return False
            if name in self._book.desired:
                try:
                    await self._engine.unload(name)
                except EngineUnavailableError as exc:
                    if self._book.view.healthy:
                        raise AdapterRefusedError(
                            "EngineUnavailable", f"could not unload: {exc}", status=503
                        ) from exc
                except EngineRefusedError as exc:
                    raise AdapterRefusedError(
                        "EngineRefused", f"the engine refused the unload: {exc}", status=409
                    ) from exc
                self._book.desired.pop(name)
                self._book.mark_unloaded(name)
                await asyncio.to_thread(self._store.remove, name)
            self._book.refused.pop(name, None)
            self._book.retries.pop(name, None)
            self._book.save()
            return True

    async def drain(self) -> None:
        """Refuse new operations and wait (bounded) for those in progress to finish."""
        self._draining = True

        async def _wait_all() -> None:
            for lock in list(self._book.locks.values()):
                async with lock:
                    pass

        try:
            await asyncio.wait_for(_wait_all(), self._settings.drain_timeout_seconds)
        except TimeoutError:
            log.warning("drain timed out; adapter operations still in progress are abandoned")

    @property
    def draining(self) -> bool:
        return self._draining
