"""How many concurrent token streams one simulator process sustains on one core, on time.

The simulator runs as its own process pinned to one core (`taskset`), with the
`constant-20tps` profile: every engine step takes 50 ms, so every stream should receive a
token every 50 ms (20 tokens/s). A raw-asyncio load generator pinned to another core opens
N concurrent streaming `/v1/completions` and timestamps every SSE event. For each N it
reports the inter-token intervals the clients saw (mean, median, p99) against the intended
50 ms, the simulator's CPU use, and whether the mean is within 5% of the intended time.

    .venv/bin/python bench/sim_streams_per_core.py [--streams 256,512,1024] [--tokens 120]

"Streams per core" is the largest N whose mean inter-token time stays within 5% of 50 ms
while the simulator is held to one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

INTENDED_S = 0.05
TOLERANCE = 0.05


@dataclass
class _Stream(asyncio.Protocol):
    request: bytes
    done: asyncio.Future[None]
    times: list[float] = field(default_factory=list)
    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        events = data.count(b"data: {")
        self.times.extend([now] * events)
        if b"data: [DONE]" in data and not self.done.done():
            self.done.set_result(None)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _request(port: int, tokens: int, index: int) -> bytes:
    body = json.dumps(
        {
            "model": "bench",
            "prompt": f"stream {index} tells a story",
            "max_tokens": tokens,
            "stream": True,
        }
    ).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


async def _load(port: int, streams: int, tokens: int, ramp_s: float) -> list[list[float]]:
    loop = asyncio.get_running_loop()
    protocols: list[_Stream] = []

    async def one(index: int) -> None:
        await asyncio.sleep(ramp_s * index / streams)
        stream = _Stream(_request(port, tokens, index), loop.create_future())
        protocols.append(stream)
        await loop.create_connection(lambda: stream, "127.0.0.1", port)
        await stream.done

    await asyncio.gather(*(one(i) for i in range(streams)))
    return [p.times for p in protocols]


def _client(port: int, streams: int, tokens: int, ramp_s: float, out: Path) -> None:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        times = runner.run(_load(port, streams, tokens, ramp_s))
    out.write_text(json.dumps(times))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError("simulator exited")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError("simulator not healthy")


@dataclass
class Result:
    streams: int
    tokens_per_s: float
    mean_ms: float
    median_ms: float
    p99_ms: float
    sim_cpu: float
    requested: int
    cpu_us_per_token: float

    @property
    def within(self) -> bool:
        return abs(self.mean_ms / 1000 - INTENDED_S) <= TOLERANCE * INTENDED_S


def run_point(streams: int, tokens: int, sim_core: int, client_core: int) -> Result:
    port = _free_port()
    sim = subprocess.Popen(
        [
            "taskset", "-c", str(sim_core), sys.executable, "-m", "data_plane.inference.simulator",
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "bench",
            "--profile", "constant-20tps", "--max-num-seqs", str(max(streams, 256)),
            "--log-level", "WARNING",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    out = Path(f"/tmp/sim-bench-{os.getpid()}-{streams}.json")
    try:
        _wait_healthy(port, sim)
        proc = psutil.Process(sim.pid)
        children = [proc, *proc.children(recursive=True)]
        cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in children)
        started = time.perf_counter()
        ramp_s = min(2.0, streams / 500)
        subprocess.run(
            [
                "taskset", "-c", str(client_core), sys.executable, __file__, "--client",
                str(port), str(streams), str(tokens), str(ramp_s), str(out),
            ],
            check=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in children) - cpu_before
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    times: list[list[float]] = json.loads(out.read_text())
    out.unlink()
    gaps = [
        b - a
        for stream in times
        for a, b in itertools.pairwise(stream[5:-2])  # steady state, tokens only
    ]
    gaps.sort()
    # Peak concurrency: the most streams open at once (between first and last token).
    edges = sorted([(st[0], 1) for st in times if st] + [(st[-1], -1) for st in times if st])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    mean_gap = statistics.fmean(gaps)
    open_streams, rate = peak, peak / mean_gap
    return Result(
        streams=open_streams,
        tokens_per_s=rate,
        mean_ms=statistics.fmean(gaps) * 1000,
        median_ms=gaps[len(gaps) // 2] * 1000,
        p99_ms=gaps[int(len(gaps) * 0.99)] * 1000,
        sim_cpu=cpu / wall,
        requested=streams,
        cpu_us_per_token=cpu / max(sum(len(t) for t in times), 1) * 1e6,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, streams, tokens, ramp, out = sys.argv[2:7]
        _client(int(port), int(streams), int(tokens), float(ramp), Path(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="128,256,512,768,1024,1536")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per stream (10 s)")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"intended inter-token time {INTENDED_S * 1000:.0f} ms, tolerance {TOLERANCE:.0%}")
    print(
        "| streams asked | peak open | tokens/s at peak | mean ITL ms | median ms "
        "| p99 ms | sim CPU (cores, whole run) | sim CPU per token | within 5% |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    best = 0
    for streams in (int(n) for n in args.streams.split(",")):
        r = run_point(streams, args.tokens, args.sim_core, args.client_core)
        if r.within and r.streams >= 0.95 * r.requested:
            best = max(best, streams)
        print(
            f"| {r.requested} | {r.streams} | {r.tokens_per_s:,.0f} | {r.mean_ms:.1f} | {r.median_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.sim_cpu:.2f} | {r.cpu_us_per_token:.0f} us | "
            f"{'yes' if r.within else 'no'} |",
            flush=True,
        )
    print(f"streams per core within 5% of the intended inter-token time: {best}")
    print(f"load average during the runs: {os.getloadavg()}")


if __name__ == "__main__":
    main()
