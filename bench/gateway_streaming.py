"""Streaming: inter-token latency added by a proxy, with 512 concurrent streams at 20 tokens/s.

The upstream (bench/static_upstream.py) sends each stream's chunks 50 ms apart; a client
(uvloop + aiohttp, in this process) opens all streams at once and records the gap between
consecutive chunks of each stream. The added ITL is the proxy's gap percentile minus the
direct one, measured side by side in the same run (rounds alternate between targets).

    .venv/bin/python bench/gateway_streaming.py [--streams 512] [--tokens 40] [--rounds 3]
        [--upstream-cpus 0] [--proxy-cpus 1] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import ExitStack

import aiohttp
import uvloop
from _procs import free_port, machine, pinned, process, router_binary

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
SIM_BODY = (
    b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}'
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_stream(
    session: aiohttp.ClientSession, url: str, body: bytes, gaps: list[float]
) -> int:
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        resp.raise_for_status()
        last = None
        events = 0
        async for chunk in resp.content.iter_any():
            now = time.perf_counter()
            n = chunk.count(b"data: ")
            if last is not None and n:
                gaps.append(now - last)
                gaps.extend([0.0] * (n - 1))
            last = now
            events += n
        return events


async def wave(url: str, streams: int, body: bytes) -> dict[str, float]:
    gaps: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        counts = await asyncio.gather(
            *(one_stream(session, url, body, gaps) for _ in range(streams))
        )
    return {
        "p50_ms": percentile(gaps, 0.50) * 1000,
        "p99_ms": percentile(gaps, 0.99) * 1000,
        "max_ms": max(gaps) * 1000,
        "events": float(sum(counts)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream-cpus")
    parser.add_argument("--proxy-cpus")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--upstream",
        choices=["static", "sim"],
        default="static",
        help="bench/static_upstream.py, or the engine simulator with its constant-20tps profile",
    )
    args = parser.parse_args()
    up, hoist, router = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up}"
    targets = {"direct": upstream, "hoist": f"http://127.0.0.1:{hoist}"}
    py = sys.executable
    with ExitStack() as stack:
        if args.upstream == "sim":
            body = SIM_BODY % args.tokens
            upstream_argv = [py, "-m", "data_plane.inference.simulator", "--port", str(up),
                             "--served-model-name", "m", "--profile", "constant-20tps",
                             "--log-level", "warning"]  # fmt: skip
        else:
            body = BODY
            upstream_argv = [py, "bench/static_upstream.py", "--port", str(up), "--tokens",
                             str(args.tokens), "--token-interval-s", "0.05"]  # fmt: skip
        stack.enter_context(
            process(pinned(upstream_argv, args.upstream_cpus), upstream + "/health")
        )
        stack.enter_context(process(
            pinned([py, "-m", "data_plane.gateway", "--discovery", "static", "--upstream",
                    f"m={upstream}", "--port", str(hoist), "--workers", str(args.workers),
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
          f" hoist workers={args.workers}")  # fmt: skip
    print("| target | ITL p50 ms | ITL p99 ms | ITL max ms | added p99 vs direct ms |")
    print("|---|---:|---:|---:|---:|")
    base = med["direct"]["p99_ms"]
    for name, m in med.items():
        added = m["p99_ms"] - base
        print(
            f"| {name} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['max_ms']:.1f} | {added:+.2f} |"
        )


if __name__ == "__main__":
    main()
