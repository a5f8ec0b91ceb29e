"""One collection kept current by list-then-watch (the I/O shell around `watch_state`).

`run()` loops until cancelled:
1. list (labels as given); the cache becomes the listing, the version is the list's;
2. watch from that version; each event updates the cache (`apply_event`), a BOOKMARK only
   moves the version, and `on_change` is called when the cache changed;
3. when the stream ends with an error, watch again from the last version after a bounded
   backoff (a dropped connection resumes: nothing is listed again); a 410 Gone (the
   version is too old) lists again instead;
4. a watch that brings nothing at all (not even a bookmark) for `silence_s` is ended
   and restarted from the last version: a stalled connection never hangs discovery.

`synced` is set once the first list succeeded; `lists`, `resumes` and `restarts` count
what happened, for tests and logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkube.core.client import LabelSelector

from control_plane.api.kube_error import KubeError
from data_plane.gateway.discovery.kube_api import Kind, KubeApi
from data_plane.gateway.discovery.watch_state import (
    BOOKMARK,
    apply_event,
    backoff_s,
    by_name,
    resource_version,
)

log = logging.getLogger("hoist.gateway.discovery")

Json = dict[str, Any]


@dataclass(frozen=True)
class WatchTiming:
    server_timeout_s: int
    """The API server ends each watch request after this long; lightkube re-opens it."""
    silence_s: float
    """A watch that brings no event for this long is restarted (bookmarks count)."""
    backoff_base_s: float
    """The first wait after a failed list or watch; doubled per failure in a row."""
    backoff_cap_s: float
    """The longest wait between attempts."""


class Informer:
    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        namespace: str,
        timing: WatchTiming,
        on_change: Callable[[], None],
        *,
        labels: LabelSelector | None = None,
    ) -> None:
        self._api = api
        self._kind = kind
        self._namespace = namespace
        self._timing = timing
        self._on_change = on_change
        self._labels = labels
        self.objects: dict[str, Json] = {}
        self.version: str | None = None
        self.synced = asyncio.Event()
        self.lists = 0
        self.resumes = 0
        self.restarts = 0
        self.last_error: KubeError | None = None
        self._failures = 0

    def __repr__(self) -> str:
        return f"Informer({self._kind.plural} in {self._namespace})"

    async def run(self) -> None:
        resuming = False
        while True:
            try:
                if self.version is None:
                    await self._list()
                elif resuming:
                    self.resumes += 1
                resuming = False
                await self._watch()  # returns when silent: watch again at once
                continue
            except KubeError as exc:
                self.last_error = exc
                if exc.gone:
                    log.info("%r: resourceVersion %s expired, listing again", self, self.version)
                    self.version = None
                else:
                    log.warning("%r failed, retrying: %s", self, exc)
                self._failures += 1
                resuming = True
            await asyncio.sleep(
                backoff_s(
                    self._failures,
                    base=self._timing.backoff_base_s,
                    cap=self._timing.backoff_cap_s,
                )
            )

    async def _list(self) -> None:
        items, version = await self._api.list(self._kind, self._namespace, labels=self._labels)
        self.lists += 1
        self._failures = 0
        fresh = by_name(items)
        changed = fresh != self.objects or not self.synced.is_set()
        self.objects = fresh
        self.version = version
        self.synced.set()
        if changed:
            self._on_change()

    async def _watch(self) -> None:
        """Watch from `version` until the stream fails (raises) or goes silent."""
        assert self.version is not None
        stream = self._api.watch(
            self._kind,
            self._namespace,
            since=self.version,
            labels=self._labels,
            server_timeout_s=self._timing.server_timeout_s,
        )
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timing.silence_s):
                        event, obj = await anext(stream)
                except TimeoutError:
                    self.restarts += 1
                    log.info("%r: silent for %ss, watching again", self, self._timing.silence_s)
                    return
                except StopAsyncIteration:
                    self.restarts += 1
                    return
                self._failures = 0  # the API answers again
                version = resource_version(obj)
                if version is not None:
                    self.version = version
                if event != BOOKMARK and apply_event(self.objects, event, obj):
                    self._on_change()
        finally:
            await stream.aclose()
