"""Free TCP ports on 127.0.0.1 for tests that start servers."""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port_block(size: int, *, start: int = 20000, stop: int = 60000) -> int:
    """The first port of `size` consecutive free ports (for the supervisor's port ranges).

    The search starts at a random place, so that test runs side by side rarely pick the
    same block between checking it and binding it.
    """
    span = stop - start - size
    offset = random.randrange(span)
    for step in range(0, span, size + 7):
        base = start + (offset + step) % span
        if all(_free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError(f"no block of {size} free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
