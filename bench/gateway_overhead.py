"""Proxy overhead: small non-streaming requests at 64 connections, side by side in one run.

Targets, all in front of the same fast static upstream (bench/static_upstream.py):
direct (no proxy), vLLM's Rust router (`vllm-router --policy round_robin`) and Hoist's
gateway. wrk drives each in turn, rounds alternate; medians are reported with ratios.
`--baseline DIR` adds a Hoist gateway run from another checkout (e.g. `git worktree add
/tmp/base main`), beside this one: a change measured against what it changes.
`--tracing 1,0.1` adds a Hoist gateway per ratio that traces that share of the requests
(`OTEL_TRACES_SAMPLER=parentbased_traceidratio`; OTLP/HTTP to bench/otlp_sink.py), beside
the untraced one. For Hoist's gateways and the router the CPU time they spent per request
is reported too (their processes' user + system time over each run, threads and worker
processes included): on a shared machine it moves less with the neighbours' load than
throughput does.

    .venv/bin/python bench/gateway_overhead.py [--connections 64] [--duration 10] [--rounds 3]
        [--upstream-cpus 0,1] [--proxy-cpus 2,3] [--load-cpus 4,5] [--workers N] [--tracing 1,0.1]
        [--baseline DIR]

Needs `wrk` (Debian) and, for the peer, `pip install vllm-router` in the same venv.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import AbstractContextManager, ExitStack

import psutil
from _procs import free_port, machine, pinned, process, router_binary

BODY = '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str, *, connections: int, duration: int, threads: int, cpus: str | None, script: str
) -> dict[str, float]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "-s",
        script,
        "--latency",
        url,
    ]
    out = subprocess.run(pinned(argv, cpus), capture_output=True, text=True, check=True).stdout
    if "Socket errors" in out or "Non-2xx" in out or "Requests/sec" not in out:
        raise RuntimeError(f"{url} failed under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests\n{out}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--upstream-cpus")
    parser.add_argument("--proxy-cpus")
    parser.add_argument("--load-cpus")
    parser.add_argument(
        "--workers", type=int, help="Hoist gateway worker processes (default: the gateway's)"
    )
    parser.add_argument("--tracing", help="sampling ratios of traced Hoist gateways, e.g. 1,0.1")
    parser.add_argument("--baseline", help="another checkout whose gateway runs beside this one")
    args = parser.parse_args()

    up, hoist, router = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up}"
    targets = {"direct": upstream, "hoist": f"http://127.0.0.1:{hoist}"}
    with ExitStack() as stack:
        script = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".lua"))
        script.write(LUA)
        script.flush()
        py = sys.executable
        stack.enter_context(process(
            pinned([py, "bench/static_upstream.py", "--port", str(up)], args.upstream_cpus),
            upstream + "/health",
        ))  # fmt: skip
        gateways: dict[str, subprocess.Popen[bytes]] = {}
        gateways["hoist"] = stack.enter_context(_hoist(upstream, hoist, args))
        if args.baseline:
            base = free_port()
            targets["hoist@baseline"] = f"http://127.0.0.1:{base}"
            gateways["hoist@baseline"] = stack.enter_context(
                _hoist(upstream, base, args, {"PYTHONPATH": args.baseline}, cwd=args.baseline)
            )
        binary = router_binary()
        if binary:
            targets["vllm-router"] = f"http://127.0.0.1:{router}"
            gateways["vllm-router"] = stack.enter_context(process(
                pinned([binary, "--worker-urls", upstream, "--policy", "round_robin",
                        "--port", str(router), "--log-level", "warning"], args.proxy_cpus),
                targets["vllm-router"] + "/health",
            ))  # fmt: skip
        ratios = [r for r in (args.tracing or "").split(",") if r]
        sink = free_port()
        if ratios:
            stack.enter_context(process(
                [py, "bench/otlp_sink.py", "--port", str(sink)], f"http://127.0.0.1:{sink}/health"
            ))  # fmt: skip
        for ratio in ratios:
            traced, name = free_port(), f"hoist+tracing@{ratio}"
            targets[name] = f"http://127.0.0.1:{traced}"
            gateways[name] = stack.enter_context(_hoist(upstream, traced, args, {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink}",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": ratio,
            }))  # fmt: skip
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        load = {"connections": args.connections, "threads": args.wrk_threads,
                "cpus": args.load_cpus, "script": script.name}  # fmt: skip
        for url in targets.values():  # warm-up
            wrk(url + "/v1/chat/completions", duration=2, **load)  # type: ignore[arg-type]
        for _ in range(args.rounds):
            for name, url in targets.items():
                before = _cpu_s(gateways.get(name))
                run = wrk(url + "/v1/chat/completions", duration=args.duration, **load)  # type: ignore[arg-type]
                if name in gateways:
                    spent = _cpu_s(gateways[name]) - before
                    run["cpu_us"] = spent / (run["rps"] * args.duration) * 1e6
                results[name].append(run)
        if ratios:
            with urllib.request.urlopen(f"http://127.0.0.1:{sink}/health") as answer:
                print("otlp sink received:", answer.read().decode())
    _report(results, args)


def _report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    """The medians as a table, the per-round ratios, and the traced and baseline ratios."""
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    print(f"machine: {machine()}; {args.connections} connections, {args.rounds} x {args.duration} s rounds,"
          f" cpus upstream={args.upstream_cpus} proxy={args.proxy_cpus} load={args.load_cpus},"
          f" hoist workers={args.workers or 'default'}")  # fmt: skip
    print(
        "| target | requests/s | p50 ms | p99 ms | throughput vs vllm-router | proxy CPU us/request |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    peer = med.get("vllm-router", {}).get("rps")
    for name, m in med.items():
        ratio = f"{m['rps'] / peer:.2f}x" if peer else "n/a"
        cpu = f"{m['cpu_us']:.0f}" if "cpu_us" in m else ""
        print(
            f"| {name} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {ratio} | {cpu} |"
        )
    print("rounds:", {n: [round(r["rps"]) for r in rs] for n, rs in results.items()})
    if peer:
        print("hoist / vllm-router per round:",
              [round(h["rps"] / r["rps"], 2) for h, r in zip(results["hoist"], results["vllm-router"], strict=True)])  # fmt: skip
    if args.baseline:
        print("hoist / hoist@baseline per round:",
              [round(h["rps"] / b["rps"], 2) for h, b in zip(results["hoist"], results["hoist@baseline"], strict=True)],
              f"CPU per request {med['hoist']['cpu_us'] / med['hoist@baseline']['cpu_us']:.2f}x")  # fmt: skip
    off = med["hoist"]
    for name, on in med.items():
        if name.startswith("hoist+tracing"):
            print(f"{name} / hoist: throughput {on['rps'] / off['rps']:.2f}x,"
                  f" p50 {on['p50_ms'] / off['p50_ms']:.2f}x, p99 {on['p99_ms'] / off['p99_ms']:.2f}x,"
                  f" CPU per request {on['cpu_us'] / off['cpu_us']:.2f}x")  # fmt: skip


def _hoist(
    upstream: str,
    port: int,
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A Hoist gateway on `port` in front of `upstream` (from checkout `cwd`, default this)."""
    argv = [sys.executable, "-m", "data_plane.gateway", "--discovery", "static",
            "--upstream", f"m={upstream}", "--port", str(port), *_workers(args.workers)]  # fmt: skip
    base = {"LOG_LEVEL": "warning", "MAX_CONCURRENT_REQUESTS": "4096"}
    return process(
        pinned(argv, args.proxy_cpus), f"http://127.0.0.1:{port}/readyz", base | (env or {}), cwd
    )


def _workers(workers: int | None) -> list[str]:
    """The gateway's `--workers` flag; none: its default (one per available core)."""
    return [] if workers is None else ["--workers", str(workers)]


def _cpu_s(proc: subprocess.Popen[bytes] | None) -> float:
    """User + system seconds of `proc` and its children (the gateway's workers)."""
    if proc is None:
        return 0.0
    root = psutil.Process(proc.pid)
    total = 0.0
    for member in [root, *root.children(recursive=True)]:
        times = member.cpu_times()
        total += times.user + times.system
    return total


if __name__ == "__main__":
    main()
