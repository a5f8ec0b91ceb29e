from __future__ import annotations

import pytest

from data_plane.gateway.__main__ import build, parse_settings
from data_plane.gateway.runtime import Gateway
from data_plane.gateway.settings import DiscoveryKind, GatewaySettings


def test_seed_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_REQUESTS", "7")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("MODEL_REPOSITORY", "/models")
    monkeypatch.setenv("HOIST_GATEWAY_UPSTREAMS", "m=http://a:1 n=http://b:2")
    monkeypatch.setenv("HOIST_GATEWAY_DISCOVERY", "static")
    s = parse_settings([])
    assert s.max_concurrent_requests == 7
    assert s.log_level == "DEBUG"
    assert str(s.model_repository) == "/models"
    assert s.upstreams == ["m=http://a:1", "n=http://b:2"]
    assert s.discovery is DiscoveryKind.STATIC


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_REQUESTS", "7")
    s = parse_settings(["--max-concurrent-requests", "9", "--discovery", "local", "--port", "0"])
    assert s.max_concurrent_requests == 9
    assert s.port == 0


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--discovery", "static"], id="static-without-upstreams"),
        pytest.param(["--max-concurrent-requests", "0"], id="zero-limit"),
        pytest.param(["--log-level", "loud"], id="bad-level"),
        pytest.param(["--discovery", "dns"], id="unknown-discovery"),
        pytest.param(["--discovery", "kubernetes"], id="kubernetes-without-an-api"),
    ],
)
def test_bad_settings_exit_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SystemExit) as info:
        parse_settings(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_more_model_namespaces_come_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOIST_GATEWAY_KUBE_MODEL_NAMESPACES", "tenant-a, tenant-b;tenant-c")
    monkeypatch.setenv("HOIST_GATEWAY_UPSTREAMS", "m=http://a:1")
    monkeypatch.setenv("HOIST_GATEWAY_DISCOVERY", "static")
    settings = parse_settings([])
    assert settings.kube_model_namespaces == ["tenant-a", "tenant-b", "tenant-c"]


def test_fault_tolerance_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOIST_GATEWAY_DRAIN_DELAY_S", "0")
    monkeypatch.setenv("HOIST_GATEWAY_DRAIN_GRACE_S", "45")
    monkeypatch.setenv("HOIST_GATEWAY_REUSE_PORT", "true")
    monkeypatch.setenv("HOIST_GATEWAY_HEALTH_PROBE_INTERVAL_S", "0")
    s = GatewaySettings()
    assert (s.drain_delay_s, s.drain_grace_s, s.reuse_port) == (0, 45, True)
    assert s.health_probe_interval_s == 0
    assert (s.health_probe_timeout_s, s.health_probe_failures) == (1.0, 2)
    assert (s.stall_floor_s, s.stall_factor, s.first_byte_floor_s) == (5.0, 50.0, 5.0)


def test_reuse_port_is_a_flag() -> None:
    assert parse_settings(["--reuse-port"]).reuse_port
    assert not parse_settings(["--no-reuse-port"]).reuse_port


async def test_the_quota_store_timeout_reaches_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOIST_GATEWAY_TENANT_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("HOIST_GATEWAY_TENANT_REDIS_TIMEOUT_S", "0.8")
    app = build(GatewaySettings(discovery="static", upstreams=["m=http://127.0.0.1:1"]))
    gateway: Gateway = app.app.state.gateway
    shared = gateway.tenancy.shared
    assert shared is not None and shared.timeout_s == 0.8
    await shared.close()
    with pytest.raises(ValueError, match="tenant_redis_timeout_s"):
        GatewaySettings(tenant_redis_timeout_s=0)
