"""Watches as the API server serves them (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):

- every write gets the next `resourceVersion`; a list answers with the latest one;
- a watch from `resourceVersion=N` replays every change after N, then streams new ones;
  without one (or with "0") it starts with an ADDED event per object;
- a watch from a version older than the history kept gets an `ERROR` event with a 410
  `Expired` Status, and the client must list again;
- with `allowWatchBookmarks=true` the stream carries `BOOKMARK` events (only
  `metadata.resourceVersion` set) while nothing else happens;
- `timeoutSeconds` ends the stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from tests.support.kube_emulator.errors import expired_event

Matcher = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Change:
    version: int
    resource: str  # "group/version/plural"
    event: dict[str, Any]


class History:
    """The changes kept for watches to replay, oldest first, up to `limit` of them."""

    def __init__(self, limit: int = 10_000) -> None:
        self._changes: collections.deque[Change] = collections.deque()
        self._limit = limit
        self._dropped_through = 0  # every change up to this version is no longer kept
        self._wakeup = asyncio.Event()

    def record(self, change: Change) -> None:
        self._changes.append(change)
        while len(self._changes) > self._limit:
            self._dropped_through = self._changes.popleft().version
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def compact(self, through: int) -> None:
        """Forget every change up to `through` (as etcd's compaction does)."""
        while self._changes and self._changes[0].version <= through:
            self._changes.popleft()
        self._dropped_through = max(self._dropped_through, through)

    def expired(self, version: int) -> bool:
        return version < self._dropped_through

    @property
    def oldest(self) -> int:
        return self._dropped_through + 1

    def after(self, version: int) -> list[Change]:
        return [c for c in self._changes if c.version > version]

    async def changed(self, within: float) -> None:
        """Return at the next change, or after `within` seconds without one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), within)


@dataclass
class WatchRequest:
    resource: str
    kind: str
    api_version: str
    since: int | None  # None: start with the current objects
    bookmarks: bool
    timeout: float | None
    matches: Matcher


async def stream(
    request: WatchRequest,
    history: History,
    snapshot: Callable[[], tuple[int, list[dict[str, Any]]]],
    bookmark_interval: float,
) -> AsyncIterator[Any]:
    """The events of one watch, as kmock streams them (one JSON document per line)."""
    yield b""  # send the headers at once, as the API server does
    loop = asyncio.get_running_loop()
    deadline = None if request.timeout is None else loop.time() + request.timeout
    if request.since is None:
        cursor, objects = snapshot()
        for obj in objects:
            if request.matches(obj):
                yield {"type": "ADDED", "object": obj}
    elif history.expired(request.since):
        yield expired_event(request.since, history.oldest)
        return
    else:
        cursor = request.since
    last_sent = loop.time()
    while True:
        for change in history.after(cursor):
            cursor = change.version
            if change.resource == request.resource and request.matches(change.event["object"]):
                last_sent = loop.time()
                yield change.event
        wait = bookmark_interval
        if request.bookmarks:  # the next bookmark is due one interval after the last send
            wait = max(bookmark_interval - (loop.time() - last_sent), 0.0)
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                return
        await history.changed(wait)
        quiet = loop.time() - last_sent >= bookmark_interval
        if request.bookmarks and quiet and not history.after(cursor):
            last_sent = loop.time()
            yield {
                "type": "BOOKMARK",
                "object": {
                    "kind": request.kind,
                    "apiVersion": request.api_version,
                    "metadata": {"resourceVersion": str(cursor)},
                },
            }
