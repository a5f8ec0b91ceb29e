"""The sidecar's shell: keeps the desired adapters loaded in the engine.

`put` and `delete` serve the adapter API; `poll` observes the engine and re-loads what it
lost (after a restart, say). Decisions come from `plan`; this module only executes them.
Operations on one adapter are serialized by a per-name lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path, PurePosixPath

import orjson

from control_plane.api.adapter_sources import SourceRefusedError, check_source
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
    EngineView,
    EngineWatch,
    Refusal,
    Retry,
    after_failure,
    loads_needed,
    observe,
    report,
)
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
        self._desired: dict[str, Desired] = {}
        self._retries: dict[str, Retry] = {}
        self._refused: dict[str, Refusal] = {}
        self._view = EngineView(healthy=False, adapters=frozenset())
        self._watch = EngineWatch()
        self._locks: dict[str, asyncio.Lock] = {}
        self._draining = False

    # -- state -------------------------------------------------------------------------

    @property
    def engine_healthy(self) -> bool:
        return self._view.healthy

    @property
    def restarts_seen(self) -> int:
        return self._watch.restarts

    def reports(self) -> dict[str, AdapterReport]:
        return report(self._desired, self._view, self._retries, self._refused)

    def report_of(self, name: str) -> AdapterReport | None:
        return self.reports().get(name)

    def restore(self) -> None:
        """Resume the desired set a previous sidecar process saved (start-up only)."""
        self._store.clean_staging()
        path = self._store.state_file
        if not path.exists():
            return
        try:
            entries = orjson.loads(path.read_bytes())["desired"]
            for entry in entries:
                want = Desired(**entry)
                if Path(want.path).is_dir():
                    self._desired[want.name] = want
                else:
                    log.warning("adapter %s: %s is gone; not restored", want.name, want.path)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
        self._update_gauges()

    def _save(self) -> None:
        path = self._store.state_file
        tmp = path.with_suffix(".tmp")
        doc = {"desired": [asdict(d) for d in self._desired.values()]}
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        tmp.replace(path)
        self._update_gauges()

    def _update_gauges(self) -> None:
        self._metrics.adapters_desired.set(len(self._desired))
        loaded = self._view.adapters & self._desired.keys() if self._view.healthy else set()
        self._metrics.adapters_loaded.set(len(loaded))
        self._metrics.engine_up.set(1 if self._view.healthy else 0)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _refuse(
        self, name: str, source: str, refusal: AdapterRefusedError, *, record: bool
    ) -> None:
        self._metrics.adapter_failures.labels(refusal.reason).inc()
        if record:
            self._refused[name] = Refusal(source, refusal.reason, refusal.message)
        log.warning("adapter %s refused (%s): %s", name, refusal.reason, refusal.message)

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
            self._refuse(name, source, refusal, record=False)
            raise
        async with self._lock(name):
            current = self._desired.get(name)
            if (
                current is not None
                and current.source == source
                and sha256 in (None, current.sha256)
                and self._view.healthy
                and name in self._view.adapters
            ):
                return 200, self._must_report(name)
            started = self._clock()
            try:
                with self.spans.fetch(name, source) as step:
                    staged = await self._store.fetch(
                        parsed, expected_sha256=sha256, tenant=tenant, credentials=credentials
                    )
                    step.fetched(staged.size)
            except AdapterRefusedError as refusal:
                self._refuse(name, source, refusal, record=current is None)
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
            return status, self._must_report(name)

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
            self._refuse(name, want.source, refusal, record=previous is None)
            raise refusal from exc
        except EngineUnavailableError as exc:
            self._metrics.adapter_loads.labels("failure").inc()
            self._accept(want, previous)
            self._retries[name] = after_failure(
                None,
                str(exc),
                now=self._clock(),
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_cap_seconds,
            )
            self._save()
            return 202
        self._metrics.adapter_loads.labels("success").inc()
        self._accept(want, previous)
        self._view = replace(self._view, adapters=self._view.adapters | {name})
        self._save()
        return 200

    def _accept(self, want: Desired, previous: Desired | None) -> None:
        self._desired[want.name] = want
        self._refused.pop(want.name, None)
        self._retries.pop(want.name, None)
        if previous is not None and previous.path != want.path:
            self._store.remove_version(want.name, previous.path)

    def _must_report(self, name: str) -> AdapterReport:
        found = self.report_of(name)
        assert found is not None, name
        return found

    async def _unload_quietly(self, name: str) -> None:
        with contextlib.suppress(EngineRefusedError, EngineUnavailableError):
            await self._engine.unload(name)

    async def delete(self, name: str) -> bool:
        """Unload and forget `name`; False when it is unknown."""
        check_name(name)
        async with self._lock(name):
            if name not in self._desired and name not in self._refused:
                return False
            if name in self._desired:
                try:
                    await self._engine.unload(name)
                except EngineUnavailableError as exc:
                    if self._view.healthy:
                        raise AdapterRefusedError(
                            "EngineUnavailable", f"could not unload: {exc}", status=503
                        ) from exc
                except EngineRefusedError as exc:
                    raise AdapterRefusedError(
                        "EngineRefused", f"the engine refused the unload: {exc}", status=409
                    ) from exc
                self._desired.pop(name)
                self._view = replace(self._view, adapters=self._view.adapters - {name})
                await asyncio.to_thread(self._store.remove, name)
            self._refused.pop(name, None)
            self._retries.pop(name, None)
            self._save()
            return True

    # -- reconciliation -----------------------------------------------------------------

    async def poll(self) -> None:
        """Observe the engine once and re-load the desired adapters it lacks."""
        # What the engine listed before this poll, among adapters still desired after it: an
        # adapter loaded or deleted while the poll was in flight is not mistaken for a loss.
        before = self._view.adapters & self._desired.keys()
        view = await self._engine.view()
        believed = frozenset(before & self._desired.keys())
        watch = observe(self._watch, view, believed)
        if watch.restarts > self._watch.restarts:
            log.warning("engine restart observed; re-loading %d adapter(s)", len(self._desired))
            self._metrics.engine_restarts.inc(watch.restarts - self._watch.restarts)
        self._watch = watch
        self._view = view
        for load in loads_needed(self._desired, view, self._retries, now=self._clock()):
            async with self._lock(load.name):
                want = self._desired.get(load.name)
                if want is None or want.path != load.path or load.name in self._view.adapters:
                    continue
                await self._reload(want)
        self._update_gauges()

    async def _reload(self, want: Desired) -> None:
        try:
            with self.spans.load(want.name):
                await self._engine.load(want.name, want.path)
        except (EngineRefusedError, EngineUnavailableError) as exc:
            self._metrics.adapter_loads.labels("failure").inc()
            self._metrics.adapter_failures.labels("ReloadFailed").inc()
            self._retries[want.name] = after_failure(
                self._retries.get(want.name),
                str(exc),
                now=self._clock(),
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_cap_seconds,
            )
            log.warning("re-load of %s failed: %s", want.name, exc)
            return
        self._metrics.adapter_loads.labels("success").inc()
        self._retries.pop(want.name, None)
        self._view = replace(self._view, adapters=self._view.adapters | {want.name})
        log.info("adapter %s re-loaded", want.name)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("poll failed")
            await asyncio.sleep(self._settings.poll_interval_seconds)

    async def drain(self) -> None:
        """Refuse new operations and wait (bounded) for those in progress to finish."""
        self._draining = True

        async def _wait_all() -> None:
            for lock in list(self._locks.values()):
                async with lock:
                    pass

        try:
            await asyncio.wait_for(_wait_all(), self._settings.drain_timeout_seconds)
        except TimeoutError:
            log.warning("drain timed out; adapter operations still in progress are abandoned")

    @property
    def draining(self) -> bool:
        return self._draining
