"""`python -m data_plane.gateway`: parse flags, build the gateway, serve it with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp
import uvicorn
from pydantic import ValidationError

from data_plane.gateway.adapters import AdapterStore, LocalAdapterStore
from data_plane.gateway.app import HotPaths, build_app
from data_plane.gateway.discovery import Discovery
from data_plane.gateway.discovery.local import LocalDiscovery
from data_plane.gateway.discovery.state import StateError
from data_plane.gateway.discovery.static import StaticDiscovery
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import DiscoveryKind, GatewaySettings

# Flags that map one-to-one onto settings fields (the rest come from the environment).
_FLAGS: dict[str, dict[str, Any]] = {
    "host": {"help": "address to listen on (default 127.0.0.1)"},
    "port": {"type": int, "help": "port to listen on (default 8080)"},
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
        from data_plane.gateway.discovery.kubernetes import KubernetesDiscovery, kube_client

        def kube(session: aiohttp.ClientSession) -> Discovery:
            return KubernetesDiscovery(
                kube_client(session, settings), settings.kube_namespace, settings.engine_port
            )

        return kube
    return lambda session: LocalDiscovery(session, settings.admin_url)


def store_factory(settings: GatewaySettings) -> Any:
    if settings.discovery is DiscoveryKind.LOCAL:
        return lambda session: LocalAdapterStore(session, settings.admin_url)
    if settings.discovery is DiscoveryKind.KUBERNETES:
        from data_plane.gateway.discovery.kubernetes import KubernetesAdapterStore, kube_client

        def kube(session: aiohttp.ClientSession) -> AdapterStore:
            return KubernetesAdapterStore(kube_client(session, settings), settings.kube_namespace)

        return kube
    return lambda _session: None


def build(settings: GatewaySettings) -> HotPaths:
    gateway = Gateway(settings, discovery_factory(settings))
    return build_app(gateway, store_factory(settings))


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = build(settings)
    except StateError as exc:
        sys.exit(f"gateway: {exc}")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
