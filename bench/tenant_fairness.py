"""Multi-tenancy: does one tenant's burst starve another on a saturated simulated fleet?

A simulated fleet (real processes: `python -m data_plane.inference.simulator`) behind the
gateway (`python -m data_plane.gateway`, static discovery, a per-replica cap so requests
queue in the gateway). Two tenants, each with its own key: `quiet` sends `--quiet-rps`
streaming requests per second (Poisson), `noisy` ten times as many, more than the fleet
serves. The client measures time to first token (first streamed chunk) per request.

Three runs: the quiet tenant alone; both with weighted fair queuing and headroom for
tenants under their share (the default, `--reserve`); both with it off (`HOIST_GATEWAY_TENANT_FAIR_QUEUING=false`: first come, first served). The
report: the quiet tenant's TTFT p50/p99, and p99 relative to running alone.

    .venv/bin/python bench/tenant_fairness.py [--seconds 20] [--quiet-rps 1] [--ratio 10]
        [--replicas 2] [--cap 4] [--max-tokens 64] [--reserve 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp
from _procs import free_port, machine, process

KEYS = {"quiet": "sk-bench-quiet-000000001", "noisy": "sk-bench-noisy-000000002"}
TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: quiet}
---
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: noisy}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def one(
    session: aiohttp.ClientSession, url: str, key: str, max_tokens: int, out: list[float]
) -> str:
    body = {
        "model": "sim",
        "messages": [{"role": "user", "content": f"hello {random.random()}"}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    started = time.perf_counter()
    headers = {"authorization": f"Bearer {key}"}
    async with session.post(url, json=body, headers=headers) as resp:
        if resp.status != 200:
            await resp.read()
            return str(resp.status)
        first = None
        async for chunk in resp.content.iter_any():
            if first is None and b"data: " in chunk:
                first = time.perf_counter() - started
        if first is not None:
            out.append(first)
        return "200"


async def tenant_load(
    session: aiohttp.ClientSession, url: str, tenant: str, rps: float, args: argparse.Namespace
) -> tuple[list[float], dict[str, int]]:
    ttft: list[float] = []
    statuses: dict[str, int] = {}
    rng = random.Random(hash(tenant))
    tasks: list[asyncio.Task[str]] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        tasks.append(asyncio.create_task(one(session, url, KEYS[tenant], args.max_tokens, ttft)))
        await asyncio.sleep(rng.expovariate(rps))
    for status in await asyncio.gather(*tasks):
        statuses[status] = statuses.get(status, 0) + 1
    return ttft, statuses


async def run(url: str, loads: dict[str, float], args: argparse.Namespace) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(tenant_load(session, url, t, rps, args) for t, rps in loads.items())
        )
    return dict(zip(loads, results, strict=True))


def scenario(
    args: argparse.Namespace, folder: Path, loads: dict[str, float], fair: bool
) -> dict[str, object]:
    sim_port, gw_port = free_port(), free_port()
    sim_ports = range(sim_port, sim_port + args.replicas)
    upstream = "sim=" + ",".join(f"http://127.0.0.1:{p}" for p in sim_ports)
    py = sys.executable
    with ExitStack() as stack:
        for p in sim_ports:
            stack.enter_context(
                process(
                    [
                        py,
                        "-m",
                        "data_plane.inference.simulator",
                        "--port",
                        str(p),
                        "--served-model-name",
                        "sim",
                        "--max-num-seqs",
                        str(args.cap),
                    ],
                    f"http://127.0.0.1:{p}/health",
                )
            )
        env = {
            "HOIST_GATEWAY_TENANTS_FILES": str(folder / "tenants.yaml"),
            "HOIST_GATEWAY_TENANT_KEYS_FILE": str(folder / "keys.txt"),
            "HOIST_GATEWAY_TENANT_FAIR_QUEUING": "true" if fair else "false",
            "HOIST_GATEWAY_TENANT_RESERVE_FRACTION": str(args.reserve),
            "HOIST_GATEWAY_QUEUE_TIMEOUT_S": "120",
            "HOIST_GATEWAY_LOAD_POLL_INTERVAL_S": "0",
        }
        stack.enter_context(
            process(
                [
                    py,
                    "-m",
                    "data_plane.gateway",
                    "--discovery",
                    "static",
                    "--upstream",
                    upstream,
                    "--port",
                    str(gw_port),
                    "--per-replica-max-in-flight",
                    str(args.cap),
                ],
                f"http://127.0.0.1:{gw_port}/healthz",
                env=env,
            )
        )
        return asyncio.run(run(f"http://127.0.0.1:{gw_port}/v1/chat/completions", loads, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--quiet-rps", type=float, default=1.0)
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cap", type=int, default=4, help="requests in flight per replica")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--reserve", type=float, default=0.25, help="HOIST_GATEWAY_TENANT_RESERVE_FRACTION"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tenants.yaml").write_text(TENANTS)
        (folder / "keys.txt").write_text("".join(f"{t}: {k}\n" for t, k in KEYS.items()))
        quiet = {"quiet": args.quiet_rps}
        both = {"quiet": args.quiet_rps, "noisy": args.quiet_rps * args.ratio}
        runs = {
            "quiet alone": scenario(args, folder, quiet, fair=True),
            "with noisy, fair queuing": scenario(args, folder, both, fair=True),
            "with noisy, FIFO": scenario(args, folder, both, fair=False),
        }
    print(f"machine: {machine()}; {args.replicas} simulated replicas, cap {args.cap} each, ")
    print(
        f"{args.max_tokens} tokens per answer, {args.seconds:.0f} s per run, "
        f"quiet {args.quiet_rps} req/s, noisy {args.quiet_rps * args.ratio} req/s, "
        f"reserve {args.reserve}"
    )
    alone_ttft = runs["quiet alone"]["quiet"][0]  # type: ignore[index]
    alone_p99 = percentile(alone_ttft, 0.99)
    print("| run | quiet TTFT p50 / p95 / p99 (ms) | p99 vs alone | statuses |")
    print("|---|---|---|---|")
    for name, result in runs.items():
        ttft, statuses = result["quiet"]  # type: ignore[index]
        noisy = result.get("noisy")
        extra = f"quiet {statuses}" + (f", noisy {noisy[1]}" if noisy else "")  # type: ignore[index]
        p50, p95, p99 = (percentile(ttft, q) * 1000 for q in (0.5, 0.95, 0.99))
        ratio = p99 / (alone_p99 * 1000)
        print(f"| {name} | {p50:.0f} / {p95:.0f} / {p99:.0f} | {ratio:.2f}x | {extra} |")


if __name__ == "__main__":
    main()
