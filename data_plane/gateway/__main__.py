"""`python -m data_plane.gateway`: parse flags, build the gateway, serve it with uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import aiohttp
import uvicorn
import yaml
from prometheus_client import values as prometheus_values
from pydantic import ValidationError

from data_plane.gateway.adapters.store import AdapterStore, LocalAdapterStore
from data_plane.gateway.app import HotPaths, build_app
from data_plane.gateway.discovery import Discovery
from data_plane.gateway.discovery.local import LocalDiscovery
from data_plane.gateway.discovery.state import StateError
from data_plane.gateway.discovery.static import StaticDiscovery
from data_plane.gateway.drain import DrainingServer, bound_socket
from data_plane.gateway.http_protocol import gateway_protocol
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import DiscoveryKind, GatewaySettings, read_token
from data_plane.gateway.tenancy.service import load_tenants
from data_plane.gateway.worker_count import available_cores, choose, declares_quota
from data_plane.telemetry import start_tracing

log = logging.getLogger("hoist.gateway")

# Flags that map one-to-one onto settings fields (the rest come from the environment).
_FLAGS: dict[str, dict[str, Any]] = {
    "host": {"help": "address to listen on (default 127.0.0.1)"},
    "port": {"type": int, "help": "port to listen on (default 8080)"},
    "workers": {
        "type": int,
        "help": "server processes sharing the port (default: one per available core)",
    },
    "reuse-port": {
        "action": argparse.BooleanOptionalAction,
        "default": None,
        "help": "listen with SO_REUSEPORT (a rolling restart on one host)",
    },
    "discovery": {"choices": [k.value for k in DiscoveryKind], "help": "where replicas come from"},
    "admin-url": {"help": "local discovery: the supervisor's admin API"},
    "upstream": {
        "dest": "upstreams",
        "action": "append",
        "help": "static discovery: MODEL=URL[,URL...], repeatable; URL#a+b lists adapters",
    },
    "upstreams-file": {"help": "static discovery: a JSON/YAML file shaped like /v1/state"},
    "kube-api-url": {"help": "kubernetes discovery: the API server (default: in-cluster)"},
    "kube-namespace": {"help": "kubernetes discovery: the namespace of the Models"},
    "max-concurrent-requests": {
        "type": int,
        "help": "requests served at once (env MAX_CONCURRENT_REQUESTS)",
    },
    "per-replica-max-in-flight": {
        "type": int,
        "help": "requests in flight per replica (0: no cap)",
    },
    "log-level": {"help": "CRITICAL, ERROR, WARNING, INFO or DEBUG (env LOG_LEVEL)"},
    "model-repository": {"help": "where weights and adapters live (env MODEL_REPOSITORY)"},
}


def parse_settings(argv: Sequence[str]) -> GatewaySettings:
    parser = argparse.ArgumentParser(
        prog="python -m data_plane.gateway",
        description="Hoist's OpenAI-compatible gateway. Every setting can also come from the "
        "environment as HOIST_GATEWAY_<NAME> (see docs/gateway.md).",
    )
    for flag, options in _FLAGS.items():
        parser.add_argument(f"--{flag}", **options)
    args = vars(parser.parse_args(argv))
    overrides = {k: v for k, v in args.items() if v is not None}
    try:
        return GatewaySettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        parser.error(problems)


def discovery_factory(settings: GatewaySettings) -> Any:
    """A function of the upstream session that builds the configured discovery."""
    if settings.discovery is DiscoveryKind.STATIC:
        static = StaticDiscovery.from_settings(settings.upstreams, settings.upstreams_file)
        return lambda _session: static
    if settings.discovery is DiscoveryKind.KUBERNETES:
        from data_plane.gateway.discovery.kube_api import KubeApi
        from data_plane.gateway.discovery.kubernetes import KubernetesDiscovery, watch_timing

        def kube(_session: aiohttp.ClientSession) -> Discovery:
            return KubernetesDiscovery(
                KubeApi.connect(settings),
                (settings.kube_namespace, *settings.kube_model_namespaces),
                settings.engine_port,
                watch_timing(settings),
            )

        return kube
    headers = admin_headers(settings)
    return lambda session: LocalDiscovery(session, settings.admin_url, headers=headers)


def admin_headers(settings: GatewaySettings) -> dict[str, str]:
    """The credential the supervisor's admin API asks for (its token file), if any."""
    token = read_token(settings.admin_token_file)
    return {"Authorization": f"Bearer {token}"} if token else {}


def store_factory(settings: GatewaySettings) -> Any:
    if settings.discovery is DiscoveryKind.LOCAL:
        headers = admin_headers(settings)
        return lambda session: LocalAdapterStore(session, settings.admin_url, headers=headers)
    if settings.discovery is DiscoveryKind.KUBERNETES:
        from data_plane.gateway.discovery.kube_adapter_store import KubernetesAdapterStore
        from data_plane.gateway.discovery.kube_api import KubeApi

        def kube(_session: aiohttp.ClientSession) -> AdapterStore:
            return KubernetesAdapterStore(KubeApi.connect(settings), settings.kube_namespace)

        return kube
    return lambda _session: None


def build(settings: GatewaySettings, *, freeze_after_start: bool = False) -> HotPaths:
    gateway = Gateway(settings, discovery_factory(settings), start_tracing("hoist-gateway"))
    return build_app(gateway, store_factory(settings), freeze_after_start=freeze_after_start)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = with_worker_count(settings)
    if settings.workers == 1:
        _serve(settings, None)
        return
    _serve_workers(settings)


def with_worker_count(settings: GatewaySettings) -> GatewaySettings:
    """`settings` with `workers` decided, when neither a flag nor the environment set it."""
    configured = settings.workers if "workers" in settings.model_fields_set else None
    try:
        quotas = declares_quota(load_tenants(settings.tenants_files).values())
    except (OSError, ValueError, yaml.YAMLError):
        quotas = False  # unreadable tenants: the gateway refuses them as it builds
    choice = choose(
        configured,
        available_cores(),
        quotas_declared=quotas,
        shared_quota_store=settings.tenant_redis_url is not None,
    )
    log.info("gateway: %d worker process(es), %s", choice.workers, choice.reason)
    if (
        choice.workers > 1
        and settings.tenant_redis_url is None
        and settings.discovery is DiscoveryKind.KUBERNETES
        and not settings.tenants_files
    ):
        log.warning(
            "gateway: %d workers and no tenant_redis_url: quotas of Tenant resources are "
            "counted by each worker (and each replica); set tenant_redis_url to share them",
            choice.workers,
        )
    return settings.model_copy(update={"workers": choice.workers})


def _serve(settings: GatewaySettings, sock: socket.socket | None) -> None:
    try:
        app = build(settings, freeze_after_start=True)
    except (StateError, ValueError) as exc:
        sys.exit(f"gateway: {exc}")
    if sock is None and settings.reuse_port:
        sock = bound_socket(settings.host, settings.port, reuse_port=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=gateway_protocol(
            settings.header_timeout_s,
            settings.body_timeout_s,
            settings.max_header_bytes,
            max_body_bytes=settings.max_body_bytes,
            routes=app.proxy_handlers(),
        ),
        ws="none",
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.drain_grace_s),
    )
    gateway: Gateway = app.app.state.gateway
    DrainingServer(config, gateway).run(sockets=[sock] if sock is not None else None)


def _serve_workers(settings: GatewaySettings) -> None:
    """Fork `workers` processes, each listening on its own SO_REUSEPORT socket of the one
    port (the kernel spreads the connections over them); their metrics are summed."""
    metrics_dir = tempfile.mkdtemp(prefix="hoist-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # Bound, never listening: it holds the port (and picks it when `port` is 0) for the
    # workers to join; only listening sockets are given connections.
    sock = bound_socket(settings.host, settings.port, reuse_port=True)
    worker = settings.model_copy(update={"port": sock.getsockname()[1], "reuse_port": True})
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sock.close()
                _multiprocess_metrics(os.getpid())
                _serve(worker, None)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        failed += os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM, -signal.SIGINT)
    sock.close()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(1 if failed else 0)


def _multiprocess_metrics(pid: int) -> None:
    """Metrics in this worker's file of the shared directory, summed on `/metrics`.

    prometheus_client's default asks the kernel for the pid on every update, to notice a
    fork; a worker forks no more, so its pid is given once (2.6% of a worker's CPU under
    load went to that check: py-spy, docs/benchmarks.md)."""
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(lambda: pid)  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
