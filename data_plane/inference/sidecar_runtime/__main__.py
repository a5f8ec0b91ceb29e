"""The sidecar process.

`python -m data_plane.inference.sidecar_runtime --host H --port P --engine-url URL
--adapter-dir DIR`
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from data_plane.inference.sidecar_runtime.app import create_app
from data_plane.inference.sidecar_runtime.settings import SidecarSettings


def parse(argv: list[str]) -> SidecarSettings:
    parser = argparse.ArgumentParser(
        prog="python -m data_plane.inference.sidecar_runtime",
        description="Hoist's inference sidecar: loads LoRA adapters into the engine beside it."
        " Flags override SIDECAR_* environment variables.",
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--engine-url", help="base URL of the engine, e.g. http://127.0.0.1:8000")
    parser.add_argument("--adapter-dir", type=Path, help="directory shared with the engine")
    parser.add_argument("--max-adapter-bytes", type=int)
    parser.add_argument("--poll-interval-seconds", type=float)
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    try:
        return SidecarSettings(**given)
    except ValidationError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    settings = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s sidecar %(name)s: %(message)s",
    )
    settings.adapter_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.drain_timeout_seconds) or None,
    )


if __name__ == "__main__":
    main()
