"""Faults under steady load on a simulated fleet: what clients see before, during and after.

Three simulator processes (one engine each, `constant-20tps` at 4x: 80 tokens/s per
stream), a gateway process in front (static discovery), closed-loop clients (half of them
streaming). Three scenarios, each on a fresh fleet:

- sigstop: one engine is stopped (SIGSTOP) for `--hang` seconds, then continued;
- sigkill: one engine is killed (SIGKILL) under `--streams` concurrent streams;
- restart: a second gateway starts on the port (SO_REUSEPORT) and the first gets SIGTERM.

For each phase (before / during / after the fault): requests sent, failed by cause, p50 and
p99 latency; and the throughput recovery time: from the fault until completions per second
are back to 80% of the rate before it, for three seconds in a row.

    PYTHONPATH=. .venv/bin/python bench/faults.py [--scenarios sigstop,sigkill,restart]
        [--phase 8] [--hang 12] [--clients 20] [--streams 256]

About two minutes with the defaults. Prints Markdown (docs/reliability.md quotes it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from _fleet import fleet, gateway, ready
from _procs import ROOT, free_port
from _soak_report import pct

sys.path.insert(0, str(ROOT))
from tests.support.fault_load import OK, Outcome, SteadyLoad

WARM_UP_S = 2.0


def phase_row(name: str, outcomes: list[Outcome], seconds: float | None) -> str:
    failed = Counter(o.result for o in outcomes if o.result != OK)
    causes = ", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "none"
    lat = [o.latency for o in outcomes]
    rate = "-" if seconds is None else f"{len(outcomes) / seconds:.0f}"
    return (
        f"| {name} | {len(outcomes)} | {rate} | {sum(failed.values())} "
        f"({causes}) | {pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} | {max(lat, default=0):.2f} |"
    )


def recovery_s(outcomes: list[Outcome], fault_at: float, before_rate: float, end: float) -> float:
    """Seconds from the fault until completions/s stay >= 80% of `before_rate` for 3 s."""
    seconds = int(end - fault_at)
    per_second = [0] * max(1, seconds)
    for o in outcomes:
        if o.result == OK and fault_at <= o.ended < fault_at + seconds:
            per_second[int(o.ended - fault_at)] += 1
    for start in range(max(0, seconds - 2)):
        if all(n >= 0.8 * before_rate for n in per_second[start : start + 3]):
            return float(start)
    return float("nan")


def report(title: str, load: SteadyLoad, marks: list[tuple[str, float]], end: float) -> None:
    """One row per phase (requests sent in it), and one for those in flight at the fault."""
    print(f"\n#### {title}\n")
    print("| phase | requests | req/s | failed (by cause) | p50 s | p99 s | max s |")
    print("|---|---|---|---|---|---|---|")
    (first, start), (_, fault_at) = marks[0], marks[1]
    before = [o for o in load.results if start <= o.started and o.ended < fault_at]
    print(phase_row(first, before, fault_at - start))
    caught = [o for o in load.results if o.started < fault_at <= o.ended]
    print(phase_row("in flight at the fault", caught, None))
    bounds = [*marks[1:], ("", end)]
    for (name, begin), (_, stop) in itertools.pairwise(bounds):
        print(phase_row(name, load.between(begin, stop), stop - begin))
    rate = len(before) / (fault_at - start)
    recovery = recovery_s(load.results, fault_at, rate, end)
    print(f"\nThroughput back to 80% of before: {recovery:.0f} s after the fault "
          "(completions per second).")  # fmt: skip


async def sigstop(tmp: Path, args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fleet(tmp) as sims, gateway(port, sims):
        await asyncio.to_thread(ready, url)
        async with SteadyLoad(url, clients=args.clients) as load:
            await asyncio.sleep(WARM_UP_S)  # clients ramp up: not measured
            start = time.monotonic()
            await asyncio.sleep(args.phase)
            stopped = time.monotonic()
            sims[0].process.send_signal(signal.SIGSTOP)
            await asyncio.sleep(args.hang)
            continued = time.monotonic()
            sims[0].process.send_signal(signal.SIGCONT)
            await asyncio.sleep(args.phase)
            end = time.monotonic()
        marks = [
            ("before", start),
            (f"SIGSTOP, {args.hang:g} s", stopped),
            ("after SIGCONT", continued),
        ]
        report(
            f"SIGSTOP of 1 of 3 engines, {args.clients} clients (half streaming)", load, marks, end
        )


async def sigkill(tmp: Path, args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clients = args.streams + 16
    with fleet(tmp) as sims, gateway(port, sims):
        await asyncio.to_thread(ready, url)
        async with SteadyLoad(url, clients=clients, streaming_share=args.streams / clients,
                              stream_tokens=64) as load:  # fmt: skip
            await asyncio.sleep(WARM_UP_S)  # clients ramp up: not measured
            start = time.monotonic()
            await asyncio.sleep(args.phase)
            killed = time.monotonic()
            sims[0].process.send_signal(signal.SIGKILL)
            await asyncio.sleep(args.phase)
            end = time.monotonic()
        marks = [("before", start), ("after SIGKILL", killed)]
        report(f"SIGKILL of 1 of 3 engines, {args.streams} streams + 16 non-streaming clients",
               load, marks, end)  # fmt: skip
        streams = [o for o in load.results if o.stream and o.ended >= killed]
        plain = [o for o in load.results if not o.stream and o.ended >= killed]
        print(f"\nAfter the kill: {sum(o.result != OK for o in plain)} of {len(plain)} "
              f"non-streaming requests failed; {sum(o.result == 'error_event' for o in streams)} "
              f"of {len(streams)} streams ended with an error event, "
              f"{sum(o.result not in (OK, 'error_event') for o in streams)} without one.")  # fmt: skip


async def restart(tmp: Path, args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fleet(tmp) as sims, gateway(port, sims) as old:
        await asyncio.to_thread(ready, url)
        async with SteadyLoad(url, clients=args.clients) as load:
            await asyncio.sleep(WARM_UP_S)  # clients ramp up: not measured
            start = time.monotonic()
            await asyncio.sleep(args.phase)
            with gateway(port, sims):
                await asyncio.sleep(3)  # the new one starts beside the old one
                term = time.monotonic()
                old.send_signal(signal.SIGTERM)
                await asyncio.sleep(args.phase)
                end = time.monotonic()
                await load.stop()
        marks = [("before", start), ("new gateway up, old SIGTERM'd", term)]
        report(
            f"Gateway rolling restart, {args.clients} clients (half streaming)", load, marks, end
        )
        print(f"\nOld gateway exit code: {old.poll()}.")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="sigstop,sigkill,restart")
    parser.add_argument("--phase", type=float, default=8.0, help="seconds before/after a fault")
    parser.add_argument("--hang", type=float, default=12.0, help="seconds an engine is stopped")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--streams", type=int, default=256)
    args = parser.parse_args()
    print(f"bench/faults.py on {platform.node()} ({os.cpu_count()} CPUs), "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; gateway defaults except a 2 s drain delay")  # fmt: skip
    scenarios = {"sigstop": sigstop, "sigkill": sigkill, "restart": restart}
    for name in args.scenarios.split(","):
        with tempfile.TemporaryDirectory(prefix=f"hoist-faults-{name}-") as tmp:
            await scenarios[name](Path(tmp), args)


if __name__ == "__main__":
    asyncio.run(main())
