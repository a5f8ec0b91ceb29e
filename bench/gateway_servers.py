"""The gateway's HTTP server: uvicorn (httptools) against granian (Rust), side by side.

The same gateway app (static discovery, one fast static upstream) served by each server
with `--workers` processes (1), `wrk -c64` small chat completions, rounds alternating; medians
and every round's requests/s and CPU per request are printed.

    .venv/bin/python bench/gateway_servers.py [--rounds 3] [--duration 8] [--proxy-cpus 1]

Under granian the app runs without what `__main__.py` adds around uvicorn (the request
head deadline, the SIGTERM drain): a measure of the server, not a way to deploy.
Needs `wrk` and `pip install granian` (not a dependency of the gateway).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack

from _procs import BIN, ROOT, free_port, machine, pinned, process
from gateway_overhead import LUA, _cpu_s, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--proxy-cpus")
    parser.add_argument("--workers", default="1", help="worker processes of each server")
    args = parser.parse_args()
    py, up = sys.executable, free_port()
    upstream = f"http://127.0.0.1:{up}"
    env = {"LOG_LEVEL": "warning", "MAX_CONCURRENT_REQUESTS": "4096",
           "HOIST_GATEWAY_DISCOVERY": "static", "HOIST_GATEWAY_UPSTREAMS": f"m={upstream}",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    ports = {"uvicorn": free_port(), "granian": free_port()}
    argv = {
        "uvicorn": [py, "-m", "data_plane.gateway", "--workers", args.workers, "--port", str(ports["uvicorn"])],
        "granian": [str(BIN / "granian"), "--interface", "asgi",
                    "--loop", "uvloop", "--workers", args.workers, "--http", "1", "--no-ws",
                    "--log-level", "warning", "--host", "127.0.0.1", "--port", str(ports["granian"]),
                    "--working-dir", "bench", "granian_gateway:app"],
    }  # fmt: skip
    with ExitStack() as stack:
        script = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".lua"))
        script.write(LUA)
        script.flush()
        stack.enter_context(
            process([py, "bench/static_upstream.py", "--port", str(up)], upstream + "/health")
        )
        procs = {
            name: stack.enter_context(process(pinned(cmd, args.proxy_cpus),
                                              f"http://127.0.0.1:{ports[name]}/readyz", env=env))
            for name, cmd in argv.items()
        }  # fmt: skip
        load = {"connections": args.connections, "threads": 2, "cpus": None, "script": script.name}
        results: dict[str, list[dict[str, float]]] = {n: [] for n in argv}
        for name in argv:  # warm-up
            wrk(f"http://127.0.0.1:{ports[name]}/v1/chat/completions", duration=2, **load)  # type: ignore[arg-type]
        for _ in range(args.rounds):
            for name in argv:
                before = _cpu_s(procs[name])
                run = wrk(
                    f"http://127.0.0.1:{ports[name]}/v1/chat/completions",
                    duration=args.duration,
                    **load,
                )  # type: ignore[arg-type]
                run["cpu_us"] = (_cpu_s(procs[name]) - before) / (run["rps"] * args.duration) * 1e6
                results[name].append(run)
    print(
        f"machine: {machine()}; {args.rounds} x {args.duration} s, {args.workers} worker(s) each, proxy cpus={args.proxy_cpus}"
    )
    print("| server | requests/s | p50 ms | p99 ms | CPU us/request |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"| {name} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['cpu_us']:.0f} |"
        )
    print(
        "rounds:",
        {n: [(round(r["rps"]), round(r["cpu_us"])) for r in rs] for n, rs in results.items()},
    )


if __name__ == "__main__":
    main()
