"""Routing quality on a simulated fleet: TTFT and throughput per routing policy.

16 simulated Llama-3.1-8B/H100 engines (one `data_plane.inference.simulator` process),
each with every adapter loaded but only `--max-loras` GPU slots, a KV cache too small to
hold every (adapter, system prompt) prefix, and prefix caching on. The workload is
shared-prefix chat: `--groups` long system prompts, `--adapters` adapters (Zipf-popular),
a unique user question per request, streamed answers. Arrivals are Poisson, the same
seeded sequence for every target. Each target gets a fresh fleet (cold caches).

Targets: each Hoist policy (static discovery from a `/v1/state`-shaped file naming the
policy; `precise-prefix` follows the engines' KV-cache events, which every engine publishes
for every target) and `vllm-router --policy cache_aware` on the same fleet and workload.

Times are in simulated seconds (wall x `--time-scale`): the simulator runs slower than
real time so that 16 engines, the proxy and the client fit on a small machine.

    .venv/bin/python bench/gateway_routing.py [--duration 60] [--rate 25] [--time-scale 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import uvloop
from _procs import free_port, machine, process, router_binary

WORDS = [
    "the",
    "model",
    "serves",
    "adapters",
    "across",
    "replicas",
    "while",
    "caches",
    "keep",
    "prefixes",
    "warm",
    "and",
    "routers",
    "balance",
    "load",
    "between",
    "engines",
    "that",
    "stream",
    "tokens",
    "to",
    "clients",
    "who",
    "wait",
    "for",
    "answers",
    "about",
    "databases",
    "queries",
    "tables",
    "joins",
    "indexes",
    "latency",
    "throughput",
    "memory",
    "blocks",
    "slots",
    "kernels",
]


KV_EVENTS_OFFSET = 1000
"""Engine i's KV-cache events: its HTTP port + this (HOIST_GATEWAY_KV_EVENTS_PORT_OFFSET)."""


@dataclass(frozen=True)
class Call:
    at: float
    adapter: str
    group: int
    question: str
    max_tokens: int


def workload(args: argparse.Namespace) -> tuple[list[str], list[Call]]:
    rng = random.Random(args.seed)
    prompts = [
        " ".join(rng.choice(WORDS) for _ in range(args.system_tokens)) for _ in range(args.groups)
    ]
    weights = [1 / (i + 1) for i in range(args.adapters)]  # Zipf: a few hot adapters, a long tail
    calls = []
    t = 0.0
    while t < args.duration:
        t += rng.expovariate(args.rate)
        calls.append(
            Call(
                at=t,
                adapter=f"lora-{rng.choices(range(args.adapters), weights)[0]}",
                group=rng.randrange(args.groups),
                question=" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))),
                max_tokens=rng.randint(32, 128),
            )
        )
    return prompts, calls


async def one(
    session: aiohttp.ClientSession, url: str, prompts: list[str], call: Call
) -> tuple[float, int] | None:
    body = {
        "model": call.adapter,
        "messages": [
            {"role": "system", "content": prompts[call.group]},
            {"role": "user", "content": call.question},
        ],
        "max_tokens": call.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with session.post(url, json=body) as resp:
        if resp.status != 200:
            await resp.read()
            return None
        async for line in resp.content:
            if not line.startswith(b"data: {"):
                continue
            # The first generated token (a chat stream may open with an empty role chunk).
            if ttft is None and _has_text(line):
                ttft = time.perf_counter() - started
            if b'"usage"' in line and b'"choices":[]' in line.replace(b" ", b""):
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return (ttft, tokens) if ttft is not None else None


def _has_text(line: bytes) -> bool:
    choices = json.loads(line[6:]).get("choices") or []
    return any((c.get("delta") or {}).get("content") or c.get("text") for c in choices)


async def drive(
    url: str, prompts: list[str], calls: list[Call]
) -> tuple[list[float], int, float, int]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        start = time.perf_counter()

        async def at(call: Call) -> tuple[float, int] | None:
            await asyncio.sleep(max(0.0, call.at - (time.perf_counter() - start)))
            try:
                return await one(session, url, prompts, call)
            except aiohttp.ClientError:
                return None

        results = await asyncio.gather(*(at(c) for c in calls))
        wall = time.perf_counter() - start
    ok = [r for r in results if r is not None]
    return [r[0] for r in ok], sum(r[1] for r in ok), wall, len(results) - len(ok)


async def load_adapters(urls: list[str], adapters: int) -> None:
    async with aiohttp.ClientSession() as session:

        async def load(url: str, i: int) -> None:
            body = {"lora_name": f"lora-{i}", "lora_path": f"/adapters/lora-{i}"}
            async with session.post(url + "/v1/load_lora_adapter", json=body) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")

        await asyncio.gather(*(load(u, i) for u in urls for i in range(adapters)))


def state_file(path: Path, urls: list[str], adapters: int, policy: str, max_loras: int) -> None:
    replicas = [
        {
            "name": f"base-{i}",
            "engineUrl": u,
            "ready": True,
            "adapters": [f"lora-{a}" for a in range(adapters)],
        }
        for i, u in enumerate(urls)
    ]
    model = {"name": "base", "routingPolicy": policy, "maxLoras": max_loras, "replicas": replicas}
    path.write_text(json.dumps({"models": [model]}))


def run_target(
    target: str, args: argparse.Namespace, prompts: list[str], calls: list[Call]
) -> dict[str, float]:
    base = free_port()
    while base + KV_EVENTS_OFFSET + args.replicas > 65535 or any(
        _busy(base + i) or _busy(base + KV_EVENTS_OFFSET + i) for i in range(args.replicas)
    ):
        base = free_port()
    # Every engine publishes KV-cache events (the same simulator load for every target);
    # engine i at base+i publishes at base+KV_EVENTS_OFFSET+i, the gateway's port convention.
    kv_events = json.dumps({
        "enable_kv_cache_events": True, "publisher": "zmq",
        "endpoint": f"tcp://*:{base + KV_EVENTS_OFFSET}",
    })  # fmt: skip
    urls = [f"http://127.0.0.1:{base + i}" for i in range(args.replicas)]
    py = sys.executable
    with ExitStack() as stack:
        stack.enter_context(process(
            [py, "-m", "data_plane.inference.simulator", "--replicas", str(args.replicas),
             "--base-port", str(base), "--served-model-name", "base", "--max-loras", str(args.max_loras),
             "--profile", "llama-3.1-8b-h100", "--time-scale", str(args.time_scale),
             "--num-gpu-blocks-override", str(args.gpu_blocks), "--accept-missing-lora-paths",
             "--kv-events-config", kv_events, "--log-level", "warning"],
            urls[-1] + "/health",
        ))  # fmt: skip
        uvloop.run(load_adapters(urls, args.adapters))
        port = free_port()
        proxy = f"http://127.0.0.1:{port}"
        if target == "vllm-router cache_aware":
            binary = router_binary()
            assert binary is not None
            stack.enter_context(process(
                [binary, "--worker-urls", *urls, "--policy", "cache_aware", "--port", str(port),
                 "--log-level", "warning"],
                proxy + "/health",
            ))  # fmt: skip
        else:
            # `policy@F` runs a policy with load factor F.
            policy, _, factor = target.partition("@")
            state = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state.json"
            state_file(state, urls, args.adapters, policy, args.max_loras)
            stack.enter_context(process(
                [py, "-m", "data_plane.gateway", "--discovery", "static", "--upstreams-file", str(state),
                 "--port", str(port)],
                proxy + "/readyz",
                env={"LOG_LEVEL": "warning", "HOIST_GATEWAY_LOAD_POLL_INTERVAL_S": "0.5",
                     "MAX_CONCURRENT_REQUESTS": "100000", "HOIST_GATEWAY_PER_REPLICA_MAX_IN_FLIGHT": "0",
                     "HOIST_GATEWAY_LOAD_FACTOR": factor or "1.25",
                     "HOIST_GATEWAY_KV_EVENTS_PORT_OFFSET": str(KV_EVENTS_OFFSET)},
            ))  # fmt: skip
        ttfts, tokens, wall, errors = uvloop.run(
            drive(proxy + "/v1/chat/completions", prompts, calls)
        )
        reasons = _routing_reasons(proxy) if target != "vllm-router cache_aware" else {}
    scale = args.time_scale
    ttfts.sort()
    return {
        "ttft_p50_s": statistics.median(ttfts) * scale,
        "ttft_p99_s": ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))] * scale,
        "tokens_per_s": tokens / (wall * scale),
        "errors": errors,
        "requests": len(calls),
        **{f"reason:{k}": v for k, v in reasons.items()},
    }


def _routing_reasons(proxy: str) -> dict[str, float]:
    """The gateway's routing decisions by reason (gateway_routing_decisions_total)."""
    import urllib.request

    with urllib.request.urlopen(proxy + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("gateway_routing_decisions_total{"):
            labels, _, value = line.rpartition(" ")
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = counts.get(reason, 0.0) + float(value)
    return counts


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=16)
    parser.add_argument("--adapters", type=int, default=24)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--system-tokens", type=int, default=1500)
    parser.add_argument("--max-loras", type=int, default=4)
    parser.add_argument(
        "--gpu-blocks", type=int, default=2500, help="KV blocks of 16 tokens per engine"
    )
    parser.add_argument("--rate", type=float, default=25.0, help="requests per wall second")
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds of arrivals")
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="runs per target (medians reported)")
    parser.add_argument(
        "--targets",
        default="default,round-robin,least-load,prefix-affinity,lora-affinity,vllm-router cache_aware",
    )
    args = parser.parse_args()
    prompts, calls = workload(args)
    targets = [
        t for t in args.targets.split(",") if t != "vllm-router cache_aware" or router_binary()
    ]
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.repeat):
        for target in targets:  # alternate targets between repeats: the machine's noise drifts
            run = run_target(target, args, prompts, calls)
            runs.setdefault(target, []).append(run)
            print(
                f"run: {target}: TTFT p50 {run['ttft_p50_s']:.3f} s, p99 {run['ttft_p99_s']:.3f} s, "
                f"{run['tokens_per_s']:.0f} tokens/s, {run['errors']:.0f} failed",
                file=sys.stderr,
                flush=True,
            )
    results = {
        t: {k: statistics.median(r.get(k, 0.0) for r in rs) for k in {k for r in rs for k in r}}
        for t, rs in runs.items()
    }
    print(
        f"machine: {machine()}; {args.replicas} replicas, {len(calls)} requests over {args.duration:.0f} wall s "
        f"at {args.rate}/s (x{args.time_scale} time scale: {args.rate / args.time_scale:.0f} req/s simulated), "
        f"{args.adapters} adapters (Zipf), {args.groups} system prompts of {args.system_tokens} tokens, "
        f"maxLoras {args.max_loras}, {args.gpu_blocks} KV blocks per engine"
    )
    print(f"medians of {args.repeat} run(s) per target")
    print("| target | TTFT p50 s | TTFT p99 s | output tokens/s | failed |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['ttft_p50_s']:.3f} | {r['ttft_p99_s']:.3f} | {r['tokens_per_s']:.0f} | {r['errors']:.0f} |"
        )
    for name, r in results.items():
        reasons = {k[7:]: int(v) for k, v in sorted(r.items()) if k.startswith("reason:")}
        if reasons:
            print(f"{name}: routing decisions by reason {reasons}")
    rr = results.get("round-robin")
    if rr:
        for name, r in results.items():
            print(f"{name}: TTFT p99 / round-robin's = {r['ttft_p99_s'] / rr['ttft_p99_s']:.2f}")


if __name__ == "__main__":
    main()
