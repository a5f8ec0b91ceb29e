"""Start the engines of one simulator process and serve them until told to stop.

`running_fleet(settings)` is an async context manager that builds one `SimEngine` and one
aiohttp site per replica (ports from `settings.ports()`; port 0 picks a free one) and
yields the `Fleet`, whose `urls` are the engines' base URLs. `main()` is the process entry
point: it runs the fleet under uvloop until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.trace import Tracer

from data_plane.inference.simulator.engine import SimEngine
from data_plane.inference.simulator.kv_events import KvEventLog
from data_plane.inference.simulator.kv_publisher import ZmqKvEventPublisher
from data_plane.inference.simulator.profiles import get_profile
from data_plane.inference.simulator.server import SimServer
from data_plane.inference.simulator.settings import SimulatorSettings, parse_args
from data_plane.telemetry import tracing

log = logging.getLogger("data_plane.inference.simulator")


def build_engine(settings: SimulatorSettings) -> SimEngine:
    """One engine as the settings describe it."""
    profile = get_profile(settings.profile).with_overrides(
        num_gpu_blocks=settings.num_gpu_blocks_override,
        block_size=settings.block_size,
        max_num_seqs=settings.max_num_seqs,
        max_num_batched_tokens=settings.max_num_batched_tokens,
    )
    return SimEngine(
        profile=profile,
        served_model_name=settings.served_model_name,
        max_model_len=settings.max_model_len or profile.max_model_len,
        max_loras=settings.max_loras,
        max_lora_rank=settings.max_lora_rank,
        enable_lora=settings.enable_lora,
        seed=settings.seed,
        time_scale=settings.time_scale,
        enable_prefix_caching=settings.enable_prefix_caching,
    )


@dataclass
class Fleet:
    """The engines of this process and where they listen."""

    engines: list[SimEngine] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    kv_event_endpoints: list[str] = field(default_factory=list)
    """Where each engine publishes KV-cache events (empty unless `--kv-events-config`)."""


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; no public accessor
    assert isinstance(server, asyncio.base_events.Server)
    sockname = server.sockets[0].getsockname()
    return int(sockname[1])


@contextlib.asynccontextmanager
async def running_fleet(
    settings: SimulatorSettings, tracer: Tracer | None = None
) -> AsyncIterator[Fleet]:
    """Serve every engine of `settings` (a span per generation with `tracer`); stop them
    all when the block exits."""
    fleet = Fleet()
    runners: list[web.AppRunner] = []
    publishers: list[ZmqKvEventPublisher] = []
    try:
        for index, port in enumerate(settings.ports()):
            engine = build_engine(settings)
            events = settings.kv_events_config
            if events is not None and events.publishes:
                publisher = ZmqKvEventPublisher(events, index=index, host=settings.host)
                publishers.append(publisher)
                publisher.start()
                engine.core.kv.events = KvEventLog()
                engine.publish_kv_events = publisher.publish
                fleet.kv_event_endpoints.append(publisher.endpoint)
            server = SimServer(
                engine,
                accept_missing_lora_paths=settings.accept_missing_lora_paths,
                stamp_chunks=settings.stamp_chunks,
                tracer=tracer,
                runner=settings.runner,
                embedding_dim=settings.embedding_dim,
            )
            runner = web.AppRunner(server.build_app(), handler_cancellation=True, access_log=None)
            await runner.setup()
            runners.append(runner)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.host, port))
            site = web.SockSite(runner, sock, backlog=4096)
            await site.start()
            fleet.engines.append(engine)
            fleet.urls.append(f"http://{settings.host}:{sock.getsockname()[1]}")
        yield fleet
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for publisher in publishers:
            await publisher.close()


async def serve(
    settings: SimulatorSettings, stop: asyncio.Event, tracer: Tracer | None = None
) -> None:
    """Run the fleet until `stop` is set."""
    async with running_fleet(settings, tracer) as fleet:
        log.info(
            "simulating %d engine(s) of %s (profile %s, time scale %g) at %s",
            len(fleet.urls),
            settings.served_model_name,
            settings.profile,
            settings.time_scale,
            ", ".join(fleet.urls),
        )
        await stop.wait()


async def _main(settings: SimulatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with tracing("hoist-simulator") as traced:  # OTEL_* variables; None: off
        await serve(settings, stop, traced.get_tracer("hoist.simulator") if traced else None)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_main(settings))
    except OSError as exc:
        print(f"simulator: cannot listen: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as exc:  # an engine that cannot exist, e.g. a context beyond its KV cache
        print(f"simulator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
