"""`python -m tests.support.kube_emulator --port PORT --kubeconfig FILE`: the emulator on its
own, with Hoist's CRDs installed, until interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import kmock

from tests.support.kube_emulator import hoist_emulator, write_kubeconfig


async def serve(port: int, kubeconfig: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with hoist_emulator() as emulator, kmock.Server(emulator, port=port) as server:
        url = str(server.url).rstrip("/")
        write_kubeconfig(kubeconfig, url)
        print(f"serving the Kubernetes API emulator on {url}; kubeconfig: {kubeconfig}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.kube_emulator")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig to write")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
