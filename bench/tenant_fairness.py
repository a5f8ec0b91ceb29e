"""Multi-tenancy: does one tenant's burst starve another on a saturated simulated fleet?

A simulated fleet (real processes: `python -m data_plane.inference.simulator`) behind the
gateway (`python -m data_plane.gateway`, static discovery, a per-replica cap so requests
queue in the gateway). Two tenants, each with its own key: `quiet` sends `--quiet-rps`
streaming requests per second (Poisson), `noisy` ten times as many, more than the fleet
serves. The client measures time to first token (the first streamed delta with text; not
the first chunk, which an engine sends before it schedules the request) per request.

Three runs: the quiet tenant alone; both with fair sharing (the default: weighted fair
queuing, headroom `--reserve` and overcommit `--overcommit` for tenants under their
share, docs/tenancy.md); both with it off (`HOIST_GATEWAY_TENANT_FAIR_QUEUING=false`:
first come, first served); `--without-overcommit` adds fair sharing with overcommit 0.
The report: the quiet tenant's TTFT p50/p95/p99, p99 relative to running alone, how many
quiet requests waited in the gateway for a slot (its `gateway_tenant_queue_seconds`), and
the noisy tenant's median TTFT (what fair sharing costs it).

`--gateways 2`: fair sharing in one gateway process against two gateway processes (as two
replicas of the gateway Deployment: each configured with the whole per-replica cap) in
front of the same engines, once sharing their admission state through a real
`redis-server` (`HOIST_GATEWAY_TENANT_REDIS_URL`) and once without it. `--spread`: which
gateway each request goes to: `alternate` (round robin, as a load balancer spreads
connections) or `by-tenant` (quiet to the first, noisy to the second: the worst case for
gateways that decide alone).

    .venv/bin/python bench/tenant_fairness.py [--seconds 20] [--quiet-rps 1] [--ratio 10]
        [--replicas 2] [--cap 4] [--max-tokens 64] [--reserve 0.25] [--overcommit 2]
        [--engine-seqs CAP+OVERCOMMIT] [--without-overcommit]
        [--gateways 2 [--spread alternate|by-tenant]]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


_TOKEN = re.compile(rb'"content":\s*"[^"]')
"""A delta with text: the first token (an engine opens a chat stream with an empty role
delta at once, before it schedules the request, so the first chunk would hide the time a
request waits in the engine's queue)."""


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
        first, tail = None, b""
        async for chunk in resp.content.iter_any():
            if first is None:
                if _TOKEN.search(tail + chunk):
                    first = time.perf_counter() - started
                tail = chunk[-32:]
        if first is not None:
            out.append(first)
        return "200"


async def tenant_load(
    session: aiohttp.ClientSession,
    urls: Iterator[str],
    tenant: str,
    rps: float,
    args: argparse.Namespace,
) -> tuple[list[float], dict[str, int]]:
    ttft: list[float] = []
    statuses: dict[str, int] = {}
    rng = random.Random(zlib.crc32(tenant.encode()))  # the same arrivals in every run
    tasks: list[asyncio.Task[str]] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        url = next(urls)
        tasks.append(asyncio.create_task(one(session, url, KEYS[tenant], args.max_tokens, ttft)))
        await asyncio.sleep(rng.expovariate(rps))
    for status in await asyncio.gather(*tasks):
        statuses[status] = statuses.get(status, 0) + 1
    return ttft, statuses


async def run(
    bases: list[str], loads: dict[str, float], args: argparse.Namespace
) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    urls = [b + "/v1/chat/completions" for b in bases]

    def spread(index: int) -> Iterator[str]:
        if args.spread == "by-tenant":
            return itertools.repeat(urls[index % len(urls)])
        return itertools.cycle(urls[index % len(urls) :] + urls[: index % len(urls)])

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(
                tenant_load(session, spread(i), t, rps, args)
                for i, (t, rps) in enumerate(loads.items())
            )
        )
        metrics = []
        for base in bases:
            async with session.get(base + "/metrics") as resp:
                metrics.append(await resp.text())
    out: dict[str, object] = dict(zip(loads, results, strict=True))
    counts = [queued(m, "quiet") for m in metrics]
    out["queued"] = (sum(c for c, _ in counts), sum(s for _, s in counts))
    return out


def queued(metrics: str, tenant: str) -> tuple[int, float]:
    """How many of `tenant`'s requests waited in the gateway for a slot, and how long in all."""
    values = {"count": 0.0, "sum": 0.0}
    for line in metrics.splitlines():
        for kind in values:
            prefix = f'gateway_tenant_queue_seconds_{kind}{{tenant="{tenant}"}} '
            if line.startswith(prefix):
                values[kind] = float(line[len(prefix) :])
    return int(values["count"]), values["sum"]


def scenario(
    args: argparse.Namespace,
    folder: Path,
    loads: dict[str, float],
    *,
    fair: bool,
    overcommit: int | None = None,
    gateways: int = 1,
    shared: bool = False,
) -> dict[str, object]:
    """One run: fresh engines, `gateways` gateway processes (sharing a fresh Redis when
    `shared`), the client's load."""
    sim_ports = [free_port() for _ in range(args.replicas)]
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
                        str(args.engine_seqs or args.cap + args.overcommit),
                    ],
                    f"http://127.0.0.1:{p}/health",
                )
            )
        env = {
            "HOIST_GATEWAY_TENANTS_FILES": str(folder / "tenants.yaml"),
            "HOIST_GATEWAY_TENANT_KEYS_FILE": str(folder / "keys.txt"),
            "HOIST_GATEWAY_TENANT_FAIR_QUEUING": "true" if fair else "false",
            "HOIST_GATEWAY_TENANT_RESERVE_FRACTION": str(args.reserve),
            "HOIST_GATEWAY_TENANT_OVERCOMMIT": str(
                args.overcommit if overcommit is None else overcommit
            ),
            "HOIST_GATEWAY_QUEUE_TIMEOUT_S": "120",
            "HOIST_GATEWAY_LOAD_POLL_INTERVAL_S": "0",
        }
        if shared:
            env["HOIST_GATEWAY_TENANT_REDIS_URL"] = stack.enter_context(redis_server(folder))
        bases = []
        for _ in range(gateways):
            gw_port = free_port()
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
            bases.append(f"http://127.0.0.1:{gw_port}")
        if shared:
            time.sleep(0.5)  # a few syncs: each gateway has read the others' first report
        return asyncio.run(run(bases, loads, args))


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--gateways needs redis-server (scripts/install-system-deps.sh)")
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    argv += ["--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


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
    parser.add_argument("--overcommit", type=int, default=2, help="HOIST_GATEWAY_TENANT_OVERCOMMIT")
    parser.add_argument(
        "--engine-seqs",
        type=int,
        default=0,
        help="each engine's --max-num-seqs (default: cap + overcommit)",
    )
    parser.add_argument(
        "--without-overcommit",
        action="store_true",
        help="also run fair queuing with HOIST_GATEWAY_TENANT_OVERCOMMIT=0",
    )
    parser.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="2: fair sharing in one gateway against two, with and without a shared Redis",
    )
    parser.add_argument("--spread", choices=("alternate", "by-tenant"), default="alternate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tenants.yaml").write_text(TENANTS)
        (folder / "keys.txt").write_text("".join(f"{t}: {k}\n" for t, k in KEYS.items()))
        quiet = {"quiet": args.quiet_rps}
        both = {"quiet": args.quiet_rps, "noisy": args.quiet_rps * args.ratio}
        runs = {
            "quiet alone": scenario(args, folder, quiet, fair=True),
            "with noisy, fair sharing": scenario(args, folder, both, fair=True),
        }
        if args.gateways > 1:
            n = args.gateways
            runs[f"with noisy, fair sharing, {n} gateways, shared Redis"] = scenario(
                args, folder, both, fair=True, gateways=n, shared=True
            )
            runs[f"with noisy, fair sharing, {n} gateways, each alone"] = scenario(
                args, folder, both, fair=True, gateways=n
            )
        if args.without_overcommit:
            runs["with noisy, fair sharing, no overcommit"] = scenario(
                args, folder, both, fair=True, overcommit=0
            )
        if args.gateways == 1:
            runs["with noisy, FIFO"] = scenario(args, folder, both, fair=False)
    print(f"machine: {machine()}; {args.replicas} simulated replicas, cap {args.cap} each, ")
    print(
        f"{args.max_tokens} tokens per answer, {args.seconds:.0f} s per run, "
        f"quiet {args.quiet_rps} req/s, noisy {args.quiet_rps * args.ratio} req/s, "
        f"reserve {args.reserve}, overcommit {args.overcommit}, "
        f"engine max_num_seqs {args.engine_seqs or args.cap + args.overcommit}"
        + (f", {args.gateways} gateways, spread {args.spread}" if args.gateways > 1 else "")
    )
    alone_ttft = runs["quiet alone"]["quiet"][0]  # type: ignore[index]
    alone_p99 = percentile(alone_ttft, 0.99)
    print(
        "| run | quiet TTFT p50 / p95 / p99 (ms) | p99 vs alone | quiet queued in gateway "
        "(requests, total s) | noisy TTFT p50 (ms) | statuses |"
    )
    print("|---|---|---|---|---|---|")
    for name, result in runs.items():
        ttft, statuses = result["quiet"]  # type: ignore[index]
        noisy = result.get("noisy")
        extra = f"quiet {statuses}" + (f", noisy {noisy[1]}" if noisy else "")  # type: ignore[index]
        noisy_p50 = f"{percentile(noisy[0], 0.5) * 1000:.0f}" if noisy else "-"  # type: ignore[index]
        n_queued, queued_s = result["queued"]  # type: ignore[misc]
        p50, p95, p99 = (percentile(ttft, q) * 1000 for q in (0.5, 0.95, 0.99))
        ratio = p99 / (alone_p99 * 1000)
        print(
            f"| {name} | {p50:.0f} / {p95:.0f} / {p99:.0f} | {ratio:.2f}x | "
            f"{n_queued}, {queued_s:.2f} | {noisy_p50} | {extra} |"
        )


if __name__ == "__main__":
    main()
