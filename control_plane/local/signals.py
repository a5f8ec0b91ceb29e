"""`hoist up`'s stop signals: the first SIGINT/SIGTERM cancels the supervisor's main task
(which stops every process in order); another one kills every process group at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(
    main: asyncio.Task[object] | None,
    *,
    stopping: Callable[[signal.Signals], None],
    force: Callable[[], None],
) -> Iterator[None]:
    """While inside: the first stop signal calls `stopping(sig)` and cancels `main` (the
    task that runs everything); each later one calls `force()`."""
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        if received == 1:
            stopping(sig)
            if main is not None:
                main.cancel()
            return
        force()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
