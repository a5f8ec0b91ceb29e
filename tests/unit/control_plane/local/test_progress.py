"""`hoist up`'s start-up lines: the elapsed time on each, and what is still starting."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from rich.console import Console

from control_plane.local.progress import StartProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200, color_system=None), out


async def test_lines_carry_the_seconds_since_hoist_up_began() -> None:
    console, out = _console(terminal=False)
    clock = Clock()
    async with StartProgress(console, interval_s=3600, began=90.0, clock=clock) as progress:
        async with progress.starting("tiny-0/engine", Path("/logs/tiny-0.engine.log")):
            clock.now = 112.5
        progress.say("ready tiny-0/engine")
    assert out.getvalue().splitlines() == [
        "[  10.0s] starting tiny-0/engine (log: /logs/tiny-0.engine.log)",
        "[  22.5s] ready tiny-0/engine",
    ]


async def test_still_starting_names_the_oldest_first_and_forgets_the_finished() -> None:
    console, _ = _console(terminal=False)
    clock = Clock()
    async with StartProgress(console, interval_s=3600, clock=clock) as progress:
        async with progress.starting("a/engine", Path("a.log")):
            clock.now += 30
            async with progress.starting("b/engine", Path("b.log")):
                clock.now += 5
                assert progress.still_starting() == "a/engine (35s), b/engine (5s)"
            assert progress.still_starting() == "a/engine (35s)"
        assert progress.still_starting() == ""


async def test_off_a_terminal_a_line_says_what_is_still_starting() -> None:
    console, out = _console(terminal=False)
    progress = StartProgress(console, interval_s=0.01)
    async with progress, progress.starting("tiny-0/engine", Path("e.log")):
        for _ in range(3000):  # 30 s at most
            if "still starting: tiny-0/engine" in out.getvalue():
                break
            await asyncio.sleep(0.01)
    assert re.search(r"\] still starting: tiny-0/engine \(\d+s\)$", out.getvalue(), re.M)


async def test_a_terminal_gets_a_spinner_not_repeated_lines() -> None:
    console, out = _console(terminal=True)
    progress = StartProgress(console, interval_s=0.01)
    async with progress, progress.starting("tiny-0/engine", Path("e.log")):
        await asyncio.sleep(0.1)
    assert "starting tiny-0/engine (log: e.log)" in out.getvalue()
    assert "still starting" not in out.getvalue()
