"""Free TCP ports on 127.0.0.1 for tests that start servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port_block(size: int, *, start: int = 20000, stop: int = 60000) -> int:
    """The first port of `size` consecutive free ports (for the supervisor's port ranges)."""
    for base in range(start, stop, size + 7):
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
