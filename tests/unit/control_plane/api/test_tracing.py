"""When tracing is on, where spans go, and what spans may say (control_plane.api.tracing)."""

from __future__ import annotations

import pytest

from control_plane.api.tracing import (
    TracingConfig,
    engine_tracing,
    otel_environment,
    safe_source,
    source_scheme,
    tenant_hash,
    tracing_config,
)

pytestmark = pytest.mark.unit

HTTP = "http/protobuf"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="nothing-set-is-off"),
        pytest.param({"OTEL_SERVICE_NAME": "x"}, None, id="a-name-alone-is-off"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
            TracingConfig("otlp", HTTP, "http://c:4318/v1/traces"),
            id="an-endpoint-turns-it-on",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"},
            TracingConfig("otlp", HTTP, "http://c:4318/custom"),
            id="the-signal-endpoint-is-used-as-is",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp"},
            TracingConfig("otlp", HTTP, "http://localhost:4318/v1/traces"),
            id="otlp-alone-uses-the-default-collector",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            TracingConfig("otlp", "grpc", "http://localhost:4317"),
            id="grpc-default",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "console"},
            TracingConfig("console", HTTP, "http://localhost:4318/v1/traces"),
            id="console",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            None,
            id="none-wins-over-an-endpoint",
        ),
        pytest.param(
            {"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"},
            None,
            id="sdk-disabled",
        ),
    ],
)
def test_tracing_config(env: dict[str, str], expected: TracingConfig | None) -> None:
    assert tracing_config(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"OTEL_TRACES_EXPORTER": "zipkin"}, id="unknown-exporter"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp,console"}, id="two-exporters"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            id="unknown-protocol",
        ),
    ],
)
def test_what_hoist_cannot_export_is_refused_not_ignored(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Hoist"):
        tracing_config(env)


def test_the_engine_gets_vllms_flag_and_the_protocol_stated() -> None:
    assert engine_tracing({}) == ([], {})
    assert engine_tracing({"OTEL_TRACES_EXPORTER": "console"}) == ([], {})
    argv, env = engine_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert argv == ["--otlp-traces-endpoint", "http://c:4318/v1/traces"]
    assert env == {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "vllm",
    }
    named = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "pod-engine"}
    assert "OTEL_SERVICE_NAME" not in engine_tracing(named)[1]  # the operator's name stays


def test_only_otel_variables_are_passed_on() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "the-operator",
        "AWS_SECRET_ACCESS_KEY": "s", "PATH": "/bin",
    }  # fmt: skip
    assert otel_environment(env) == {"OTEL_TRACES_EXPORTER": "otlp"}


@pytest.mark.parametrize(
    ("source", "scheme", "shown"),
    [
        pytest.param("/adapters/sql", "file", "/adapters/sql", id="path"),
        pytest.param("file:///a/b", "file", "file:///a/b", id="file-url"),
        pytest.param(
            "https://user:pw@host:8443/a.tgz?X-Amz-Signature=abc#f",
            "https",
            "https://host:8443/a.tgz",
            id="credentials-and-query-dropped",
        ),
        pytest.param("s3://bucket/key/", "s3", "s3://bucket/key/", id="s3"),
        pytest.param("HF://org/repo@v1", "hf", "hf://org/repo@v1", id="hf"),
    ],
)
def test_what_a_span_says_of_a_source(source: str, scheme: str, shown: str) -> None:
    assert source_scheme(source) == scheme
    assert safe_source(source) == shown


def test_tenant_hash_is_stable_short_and_not_the_name() -> None:
    assert tenant_hash("acme") == tenant_hash("acme")
    assert tenant_hash("acme") != tenant_hash("acme2")
    assert len(tenant_hash("acme")) == 16
    assert "acme" not in tenant_hash("acme")
