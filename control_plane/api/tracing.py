"""Whether a process traces, and where its spans go: the OpenTelemetry variables (pure).

Every Hoist process (gateway, simulator, sidecar, engine launcher, operators) reads the
standard `OTEL_*` variables the same way, through `tracing_config`; nothing else turns
tracing on. It is off unless the environment asks for it:

- `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: off;
- `OTEL_TRACES_EXPORTER=otlp` (or `console`): on;
- `OTEL_TRACES_EXPORTER` unset: on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_ENDPOINT` is set (a collector was named), off otherwise.

The rest (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*_HEADERS`...) the OpenTelemetry SDK reads itself.
The rules for what a span may say about adapter sources (`source_scheme`, `safe_source`)
and tenants (`tenant_hash`) live here too, so that the gateway, the sidecar and the
operators say it alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"
_DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
_DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
_TRACES_PATH = "/v1/traces"
ENGINE_SERVICE_NAME = "vllm"
"""The engine's service name when OTEL_SERVICE_NAME does not give one."""


@dataclass(frozen=True)
class TracingConfig:
    """Tracing is on: how spans leave the process."""

    exporter: str
    """`otlp` or `console`."""
    protocol: str
    """`http/protobuf` or `grpc` (OTLP only)."""
    traces_endpoint: str
    """Where OTLP spans go: for http/protobuf the full URL with `/v1/traces`."""


def _flag(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip().lower()


def tracing_config(environ: Mapping[str, str]) -> TracingConfig | None:
    """The process's tracing, or None when it is off (module docstring).

    Raises ValueError for an exporter or protocol Hoist cannot speak (a typo should not
    silently turn tracing off)."""
    if _flag(environ, "OTEL_SDK_DISABLED") == "true":
        return None
    exporters = [e.strip() for e in _flag(environ, "OTEL_TRACES_EXPORTER").split(",") if e.strip()]
    signal_endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base_endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not exporters:
        if not (signal_endpoint or base_endpoint):
            return None
        exporters = ["otlp"]
    if exporters == ["none"]:
        return None
    unknown = [e for e in exporters if e not in ("otlp", "console")]
    if unknown or len(exporters) > 1:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={','.join(exporters)}: Hoist exports to one of otlp, console"
        )
    protocol = (
        _flag(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or _flag(environ, "OTEL_EXPORTER_OTLP_PROTOCOL")
        or HTTP_PROTOBUF
    )
    if protocol not in (HTTP_PROTOBUF, GRPC):
        raise ValueError(f"OTLP protocol {protocol!r}: Hoist speaks http/protobuf or grpc")
    if signal_endpoint:
        endpoint = signal_endpoint
    elif protocol == GRPC:
        endpoint = base_endpoint or _DEFAULT_GRPC_ENDPOINT
    else:  # the spec: the signal path is appended to the base endpoint
        endpoint = (base_endpoint or _DEFAULT_HTTP_ENDPOINT).rstrip("/") + _TRACES_PATH
    return TracingConfig(exporters[0], protocol, endpoint)


def otel_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The `OTEL_*` variables of `environ`: what a process passes on to those it starts
    (engines, pods), so that they trace to the same place. Not `OTEL_SERVICE_NAME`: each
    process names itself (`hoist-gateway`, `hoist-sidecar`, `vllm`...)."""
    return {k: v for k, v in environ.items() if k.startswith("OTEL_") and k != "OTEL_SERVICE_NAME"}


def engine_tracing(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """vLLM's own OTLP export, when tracing is on: its flags and environment.

    vLLM 0.32 takes the traces endpoint as `--otlp-traces-endpoint` and picks its exporter
    by `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (grpc when unset, unlike the SDK's default),
    so the protocol is always stated."""
    config = tracing_config(environ)
    if config is None or config.exporter != "otlp":
        return [], {}
    env = {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": config.protocol}
    if not environ.get("OTEL_SERVICE_NAME"):
        env["OTEL_SERVICE_NAME"] = ENGINE_SERVICE_NAME
    return ["--otlp-traces-endpoint", config.traces_endpoint], env


def tenant_hash(tenant: str) -> str:
    """A tenant as spans name it: a short stable hash (tenant names can be customer names)."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:16]


def source_scheme(source: str) -> str:
    """An adapter source's scheme for a span attribute: `s3`, `https`, `file` (a path)."""
    scheme = urlsplit(source).scheme.lower()
    return scheme if len(scheme) > 1 else "file"  # a Windows drive letter is no scheme


def safe_source(source: str) -> str:
    """An adapter source as a span may show it: no credentials, query or fragment (signed
    URLs carry their signature in the query)."""
    url = urlsplit(source)
    if len(url.scheme) <= 1:
        return source.split("?", 1)[0]
    host = url.hostname or ""
    if url.port is not None:
        host = f"{host}:{url.port}"
    return f"{url.scheme}://{host}{url.path}"
