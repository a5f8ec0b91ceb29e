"""Soak: the Azure conversation trace, replayed for many minutes against a simulated fleet
with periodic faults; failures owed to each fault, latency around it, and whether the RSS
and open file descriptors of every process stay flat.

The fleet is bench/faults.py's (bench/_fleet.py): three simulator engines (80 tokens/s
per stream) behind one gateway process, on 127.0.0.1. Arrivals are open-loop, at the
trace's recorded offsets sped up to `--rate` requests/s on average (the trace repeats if
the soak outlasts it); prompt and output lengths are the trace's, capped (`--max-prompt`
words, `--max-tokens`); every other request streams. Every `--fault-every` seconds one
fault, in turn: SIGSTOP of an engine for `--hang` s then SIGCONT; SIGKILL of an engine,
restarted on its port; a gateway rolling restart (a new one on the port with
SO_REUSEPORT, then SIGTERM to the old one). psutil samples every process every
`--sample-every` s.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--minutes 20] [--rate 24] [--write]

Prints Markdown; `--write` also puts it in docs/reliability.md ("Soak", Gateway section).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil
from _fleet import fleet, ready, restart_sim, start_gateway, stop_gateway
from _procs import ROOT, free_port, machine
from _soak_report import (
    UNEXPLAINED,
    FaultWindow,
    Sample,
    clock,
    failures_by_window,
    fault_table,
    flatness,
    flatness_table,
    idle_back,
    timeline_table,
)
from autoscaler_replay import DEFAULT_TRACE, load_trace

sys.path.insert(0, str(ROOT))
from tests.support.fault_load import OK, Outcome, complete
from tests.support.simulator import SimProcess

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
TOLERANCE = 0.10


class Soak:
    """The running fleet, what was sent, the fault windows and the resource samples."""

    def __init__(self, args: argparse.Namespace, tmp: Path, sims: list[SimProcess]) -> None:
        self.args, self.tmp, self.sims = args, tmp, sims
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateways = [start_gateway(self.port, sims)]
        self.t0 = time.monotonic()
        self.results: list[Outcome] = []
        self.windows: list[FaultWindow] = []
        self.samples: list[Sample] = []
        self.notes: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def replay(self, duration_s: float) -> None:
        trace = load_trace(self.args.trace, 1.0)
        span = trace[-1].arrival
        speedup = self.args.rate * span / len(trace)
        period = span / speedup
        tasks: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            n = 0
            while True:
                r = trace[n % len(trace)]
                at = (n // len(trace)) * period + r.arrival / speedup
                if at >= duration_s:
                    break
                await asyncio.sleep(max(0.0, at - self.now()))
                body = {"model": "sim", "prompt": "word " * min(r.prompt, self.args.max_prompt),
                        "max_tokens": min(r.output, self.args.max_tokens), "stream": n % 2 == 0}  # fmt: skip
                task = asyncio.create_task(self._send(http, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            if tasks:
                await asyncio.wait(tasks, timeout=90)

    async def _send(self, http: aiohttp.ClientSession, body: dict[str, object]) -> None:
        o = await complete(http, self.url, body)
        self.results.append(
            Outcome(o.stream, o.started - self.t0, o.ended - self.t0, o.result, o.detail)
        )

    async def faults(self, duration_s: float) -> None:
        kinds = [self.sigstop, self.sigkill, self.restart]
        every = self.args.fault_every
        k = 1
        while k * every + every / 2 <= duration_s:  # the last fault gets time to recover
            await asyncio.sleep(k * every - self.now())
            engine = (k - 1) % len(self.sims)
            await kinds[(k - 1) % len(kinds)](f"#{k}", engine)
            k += 1

    async def sigstop(self, name: str, i: int) -> None:
        proc = self.sims[i].process
        start = self.now()
        proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(self.args.hang)
        proc.send_signal(signal.SIGCONT)
        self.windows.append(
            FaultWindow(f"{name} SIGSTOP engine-{i} for {self.args.hang:g} s", start, self.now())
        )

    async def sigkill(self, name: str, i: int) -> None:
        start = self.now()
        self.sims[i].process.send_signal(signal.SIGKILL)
        log = self.tmp / f"sim-{i}-{name[1:]}.log"
        self.sims[i] = await asyncio.to_thread(restart_sim, self.sims[i], log)
        self.windows.append(FaultWindow(f"{name} SIGKILL engine-{i}, restarted", start, self.now()))

    async def restart(self, name: str, _: int) -> None:
        start = self.now()
        old = self.gateways[-1]
        new = start_gateway(self.port, self.sims)
        self.gateways.append(new)
        await asyncio.to_thread(listening, new, self.port)
        code = await asyncio.to_thread(stop_gateway, old, 60)
        self.notes.append(f"{name}: the old gateway exited with code {code}.")
        self.windows.append(FaultWindow(f"{name} gateway rolling restart", start, self.now()))

    async def sample(self, duration_s: float) -> None:
        while self.now() < duration_s:
            self.samples.extend(self.measure())
            await asyncio.sleep(self.args.sample_every)

    def measure(self) -> list[Sample]:
        """RSS and descriptors of every gateway and engine process running now."""
        at = self.now()
        procs = [("gateway", g.pid) for g in self.gateways if g.poll() is None]
        procs += [(f"engine-{i}", s.process.pid) for i, s in enumerate(self.sims)]
        out = []
        for role, pid in procs:
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss
                links = [os.readlink(e.path) for e in os.scandir(f"/proc/{pid}/fd")]
                conns = proc.net_connections(kind="tcp")
            except (psutil.NoSuchProcess, FileNotFoundError):
                continue  # killed between the list and the reading
            sockets = sum(link.startswith("socket:") for link in links)
            stale = sum(c.status == psutil.CONN_CLOSE_WAIT for c in conns)
            out.append(Sample(at, role, pid, rss, len(links), sockets, stale))
        return out


def listening(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 60) -> None:
    """Wait until `proc` listens on `port` (it binds only once it can serve)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the new gateway exited with {proc.returncode}")
        conns = psutil.Process(proc.pid).net_connections(kind="tcp")
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns):
            return
        time.sleep(0.2)
    raise RuntimeError("the new gateway did not listen in time")


async def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    duration = args.minutes * 60
    started = datetime.now(UTC)
    with fleet(tmp) as sims:
        soak = Soak(args, tmp, sims)
        try:
            await asyncio.to_thread(ready, soak.url)
            soak.t0 = time.monotonic()
            idle_before = soak.measure()
            await asyncio.gather(soak.replay(duration), soak.faults(duration),
                                 soak.sample(duration))  # fmt: skip
            await asyncio.sleep(args.idle)  # every keep-alive connection times out
            idle_after = soak.measure()
        finally:
            for g in soak.gateways:
                stop_gateway(g)
    return render(args, soak, started, duration, (idle_before, idle_after))


def render(
    args: argparse.Namespace,
    soak: Soak,
    started: datetime,
    duration: float,
    idle: tuple[list[Sample], list[Sample]],
) -> list[str]:
    results = soak.results
    failed = sum(o.result != OK for o in results)
    verdicts = flatness(soak.samples, args.warm_up)
    flat = [v.within(TOLERANCE) for v in verdicts]
    table = fault_table(results, soak.windows, args.grace, args.phase, duration)
    back = idle_back(*idle, TOLERANCE)
    unexplained = sum(failures_by_window(results, soak.windows, args.grace)[UNEXPLAINED].values())
    return [
        f"`PYTHONPATH=. .venv/bin/python bench/soak.py --minutes {args.minutes:g} "
        f"--rate {args.rate:g} --fault-every {args.fault_every:g}` ({platform.node()}, "
        f"{machine()}; {started:%Y-%m-%d %H:%M} UTC; shared with other work, so read counts "
        "and ratios rather than absolute times).",
        "",
        f"Trace `{args.trace.name}` sped up to {args.rate:g} requests/s on average, half "
        f"streaming, prompts capped at {args.max_prompt} words, outputs at "
        f"{args.max_tokens} tokens. {len(results)} requests sent over {clock(duration)}, "
        f"{failed} failed; {len(soak.windows)} faults, one every {args.fault_every:g} s; "
        f"a failure is owed to a fault when the request was in flight between the fault "
        f"and {args.grace:g} s after its end. p99 before: requests sent in the "
        f"{args.phase:g} s before the fault that ended before it; in flight: those running "
        "when it hit; during: sent from the fault to its end + grace; after: sent in the "
        f"{args.phase:g} s after that.",
        "",
        *table,
        "",
        *soak.notes,
        "",
        f"RSS and open file descriptors, sampled every {args.sample_every:g} s; each process "
        f"judged from {args.warm_up:g} s after its first sample (a restarted one from its "
        "restart). Sockets follow the load (connections open and close with it), so under "
        "load the descriptors that are not sockets are judged; with no load, before the "
        f"soak and {args.idle:g} s after its last request, all of them are compared:",
        "",
        *flatness_table(verdicts, TOLERANCE),
        "",
        *back,
        "",
        "Over time (the first sample of every 2 minutes; a restarted process keeps its "
        "role's column):",
        "",
        *timeline_table(soak.samples),
        "",
        f"**Verdict**: {unexplained} unexplained failures; RSS and non-socket fds within "
        f"{TOLERANCE:.0%} after warm-up: {sum(f is True for f in flat)} of {len(flat)} "
        f"processes ({sum(f is None for f in flat)} lived too short to judge, "
        f"{sum(f is False for f in flat)} not flat); descriptors back to their idle count "
        f"after the soak: {sum(row.endswith('| yes |') for row in back)} of {len(back) - 4}.",
    ]


def write(lines: list[str]) -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--rate", type=float, default=24, help="mean requests/s")
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-prompt", type=int, default=512, help="words")
    parser.add_argument("--fault-every", type=float, default=240, help="seconds")
    parser.add_argument("--hang", type=float, default=10, help="seconds of SIGSTOP")
    parser.add_argument("--grace", type=float, default=10, help="recovery after a fault, s")
    parser.add_argument("--phase", type=float, default=60, help="before/after windows, s")
    parser.add_argument("--warm-up", type=float, default=120, help="seconds not judged")
    parser.add_argument("--idle", type=float, default=40, help="wait after the load, s")
    parser.add_argument("--sample-every", type=float, default=10, help="seconds")
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hoist-soak-") as tmp:
        lines = asyncio.run(run(args, Path(tmp)))
    print("\n".join(lines))
    if args.write:
        write(lines)


if __name__ == "__main__":
    main()
