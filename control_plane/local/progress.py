"""`hoist up`'s start-up lines: what starts, that it is still starting, when it is ready.

Every line carries the seconds since `hoist up` began (`[  12.3s] ...`, as `prepare`
prints them). On a terminal a spinner shows the processes still starting; off one (a log
file, CI, `make run | tee`) nothing can redraw, so a line says every `interval_s` which
processes are still starting and for how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class StartProgress:
    """Reports the start of each process; `async with` it around the whole start-up."""

    def __init__(
        self,
        console: Console,
        *,
        interval_s: float,
        began: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._interval_s = interval_s
        self._clock = clock
        self._began = clock() if began is None else began
        self._starting: dict[str, float] = {}  # process name -> when it started
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._ticker: asyncio.Task[None] | None = None

    def say(self, message: str) -> None:
        """One line, prefixed with the seconds since `hoist up` began (markup allowed)."""
        self._console.print(f"\\[{self._clock() - self._began:6.1f}s] {message}", highlight=False)

    async def __aenter__(self) -> StartProgress:
        if self._console.is_terminal:
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            self._progress = Progress(*columns, console=self._console, transient=True)
            self._progress.start()
        else:
            self._ticker = asyncio.create_task(self._tick(), name="start-up progress")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._progress is not None:
            self._progress.stop()

    @contextlib.asynccontextmanager
    async def starting(self, name: str, log: Path) -> AsyncIterator[None]:
        """Around one process's start: a line when it begins; the caller reports the end."""
        self._starting[name] = self._clock()
        self.say(f"starting {escape(name)} (log: {escape(str(log))})")
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(f"starting {escape(name)}", total=None)
        try:
            yield
        finally:
            self._starting.pop(name, None)
            task = self._tasks.pop(name, None)
            if task is not None and self._progress is not None:
                self._progress.remove_task(task)

    def still_starting(self) -> str:
        """`engine tiny-0 (31s), sidecar tiny-0 (2s)`: what is starting, oldest first."""
        now = self._clock()
        oldest_first = sorted(self._starting.items(), key=lambda item: item[1])
        return ", ".join(f"{name} ({now - since:.0f}s)" for name, since in oldest_first)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            waiting = self.still_starting()
            if waiting:
                self.say(f"still starting: {escape(waiting)}")
