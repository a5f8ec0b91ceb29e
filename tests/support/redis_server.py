"""A real redis-server on a free loopback port, for the tests that share counters.

    with running_redis(tmp_path) as url:        # redis://127.0.0.1:PORT/0
        ...

No persistence unless `persist=True` (then an append-only file under `directory`, so a
restarted server finds its data). The server is stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(directory: Path, *, persist: bool = False, port: int = 0) -> Iterator[str]:
    with redis_process(directory, persist=persist, port=port) as (url, _):
        yield url


@contextlib.contextmanager
def redis_process(
    directory: Path, *, persist: bool = False, port: int = 0
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As `running_redis`, with the server's process too (to stop or kill it in a test)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/install-system-deps.sh)")
    port = port or _free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    args += ["--save", "", "--appendonly", "yes" if persist else "no", "--daemonize", "no"]
    log = (directory / f"redis-{port}.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: see {log.name}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a test may have left it stopped
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
