"""Waiting for another task's state in tests, with a bound (never a bare sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5) -> None:
    """Poll `predicate` until it holds; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the state belongs to another task or process
            await asyncio.sleep(0.01)
