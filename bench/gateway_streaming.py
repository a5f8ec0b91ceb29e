"""Streaming: inter-token latency added by a proxy, with 512 concurrent streams at 20 tokens/s.

The upstream (bench/static_upstream.py, or the engine simulator) sends each stream's chunks
50 ms apart; a client in this process (uvloop, an asyncio protocol per stream) opens all
streams at once and records the gap between consecutive chunks of each stream as their
bytes arrive. The added ITL is the proxy's gap percentile minus the
direct one, measured side by side in the same run (rounds alternate between targets).

With the engine simulator as the upstream (`--upstream sim`), each chunk also carries the
time the simulator wrote it (`--stamp-chunks`; one host, one monotonic clock), so every
gap is compared with the gap the engine produced: "added on the way" is that difference
(proxy, kernel and client; for `direct`, kernel and client only), and the proxy's share is
its p99 minus direct's. This removes the engine's own step jitter, which on a small
machine is larger than what a proxy adds.

    .venv/bin/python bench/gateway_streaming.py [--streams 512] [--tokens 40] [--rounds 3]
        [--upstream-cpus 0] [--proxy-cpus 1] [--client-cpus 0] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from contextlib import ExitStack

import httptools
import uvloop
from _procs import free_port, machine, pinned, process, router_binary

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
SIM_BODY = (
    b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}'
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_STAMP = b'"hoist_sent_ns":'


def _stamps(body: bytes) -> list[int]:
    """The engine simulator's send times in a body (`--stamp-chunks`), in order. A stamp
    cut by the end of this piece of the body is skipped: the next gap then spans two
    chunks, which measures the same thing over a longer interval."""
    out = []
    at = body.find(_STAMP)
    while at >= 0:
        start = at + len(_STAMP)
        end = start
        while end < len(body) and body[end : end + 1].isdigit():
            end += 1
        if end == len(body) or end == start:
            break
        out.append(int(body[start:end]))
        at = body.find(_STAMP, end)
    return out


class _Stream(asyncio.Protocol):
    """One streamed request; timestamps each chunk as its bytes arrive (in the protocol's
    callback, so that the client's own scheduling adds as little as possible).

    With a stamping upstream (the simulator's `--stamp-chunks`), each gap between two
    chunks is also compared with the gap between their send times: the difference is the
    inter-token latency added on the way (proxy, kernel, this client), free of the
    engine's own jitter."""

    def __init__(
        self,
        request: bytes,
        gaps: list[float],
        done: asyncio.Future[int],
        added: list[float] | None = None,
    ) -> None:
        self.request = request
        self.gaps = gaps
        self.added = added if added is not None else []
        self.sent: int | None = None
        self.received: int | None = None
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.last: float | None = None
        self.events = 0
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        received = time.monotonic_ns()
        for sent in _stamps(body):
            if self.sent is not None and self.received is not None:
                self.added.append(((received - self.received) - (sent - self.sent)) / 1e9)
            self.sent, self.received = sent, received
        n = body.count(b"data: ")
        if self.last is not None and n:
            self.gaps.append(now - self.last)
            self.gaps.extend([0.0] * (n - 1))
        self.last = now
        self.events += n

    def on_message_complete(self) -> None:
        if not self.done.done():
            if self.status != 200:
                self.done.set_exception(RuntimeError(f"HTTP {self.status}"))
            else:
                self.done.set_result(self.events)
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"connection lost: {exc}"))


async def wave(url: str, streams: int, body: bytes) -> dict[str, float]:
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, port = host_port.split(":")
    request = (
        f"POST /{path} HTTP/1.1\r\nhost: {host_port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    added: list[float] = []
    finished = [loop.create_future() for _ in range(streams)]
    await asyncio.gather(*(
        loop.create_connection(lambda f=f: _Stream(request, gaps, f, added), host, int(port))  # type: ignore[misc]
        for f in finished
    ))  # fmt: skip
    async with asyncio.timeout(120):
        counts = await asyncio.gather(*finished)
    out = {
        "p50_ms": percentile(gaps, 0.50) * 1000,
        "p99_ms": percentile(gaps, 0.99) * 1000,
        "max_ms": max(gaps) * 1000,
        "events": float(sum(counts)),
    }
    if added:
        out["added_p99_ms"] = percentile(added, 0.99) * 1000
        out["added_p999_ms"] = percentile(added, 0.999) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream-cpus")
    parser.add_argument("--proxy-cpus")
    parser.add_argument("--client-cpus", help="pin this process (the client) to these CPUs")
    parser.add_argument("--workers", type=int, help="Hoist's workers (default: the gateway's)")
    parser.add_argument(
        "--upstream",
        choices=["static", "sim"],
        default="static",
        help="bench/static_upstream.py, or the engine simulator with its constant-20tps profile",
    )
    args = parser.parse_args()
    if args.client_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    up, hoist, router = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up}"
    targets = {"direct": upstream, "hoist": f"http://127.0.0.1:{hoist}"}
    py = sys.executable
    with ExitStack() as stack:
        if args.upstream == "sim":
            body = SIM_BODY % args.tokens
            upstream_argv = [py, "-m", "data_plane.inference.simulator", "--port", str(up),
                             "--served-model-name", "m", "--profile", "constant-20tps",
                             "--stamp-chunks", "--log-level", "warning"]  # fmt: skip
        else:
            body = BODY
            upstream_argv = [py, "bench/static_upstream.py", "--port", str(up), "--tokens",
                             str(args.tokens), "--token-interval-s", "0.05"]  # fmt: skip
        stack.enter_context(
            process(pinned(upstream_argv, args.upstream_cpus), upstream + "/health")
        )
        stack.enter_context(process(
            pinned([py, "-m", "data_plane.gateway", "--discovery", "static", "--upstream",
                    f"m={upstream}", "--port", str(hoist), *(["--workers", str(args.workers)] if args.workers else []),
                    "--per-replica-max-in-flight", "0"],  # all streams at once, as the router
                   args.proxy_cpus),
            targets["hoist"] + "/readyz",
            env={"LOG_LEVEL": "warning", "MAX_CONCURRENT_REQUESTS": "4096"},
        ))  # fmt: skip
        binary = router_binary()
        if binary:
            targets["vllm-router"] = f"http://127.0.0.1:{router}"
            stack.enter_context(process(
                pinned([binary, "--worker-urls", upstream, "--policy", "round_robin",
                        "--port", str(router), "--log-level", "warning"], args.proxy_cpus),
                targets["vllm-router"] + "/health",
            ))  # fmt: skip
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                run = uvloop.run(wave(url + "/v1/chat/completions", args.streams, body))
                if run["events"] < args.streams * (args.tokens + 1):
                    raise RuntimeError(f"{name}: {run['events']} events, expected more")
                results[name].append(run)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    print(f"machine: {machine()}; upstream {args.upstream};"
          f" {args.streams} streams x {args.tokens} tokens at 20 tokens/s,"
          f" {args.rounds} rounds, cpus upstream={args.upstream_cpus} proxy={args.proxy_cpus},"
          f" hoist workers={args.workers or 'default'}")  # fmt: skip
    stamped = "added_p99_ms" in med["direct"]
    head = "| target | ITL p50 ms | ITL p99 ms | ITL max ms | ITL p99 vs direct ms |"
    rule = "|---|---:|---:|---:|---:|"
    if stamped:
        head += " added on the way p99 ms | p99.9 ms | proxy's share of p99 ms |"
        rule += "---:|---:|---:|"
    print(head)
    print(rule)
    base = med["direct"]
    for name, m in med.items():
        row = (
            f"| {name} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['max_ms']:.1f} "
            f"| {m['p99_ms'] - base['p99_ms']:+.2f} |"
        )
        if stamped:
            share = m["added_p99_ms"] - base["added_p99_ms"]
            row += f" {m['added_p99_ms']:.2f} | {m['added_p999_ms']:.2f} | {share:+.2f} |"
        print(row)
    if stamped:
        print("per round, added on the way p99 ms:")
        for name, runs in results.items():
            values = ", ".join(f"{r['added_p99_ms']:.2f}" for r in runs)
            print(f"  {name}: {values}")


if __name__ == "__main__":
    main()
