"""The supervisor hands one adapter source policy to the gateway and every sidecar."""

from __future__ import annotations

from pathlib import Path

from control_plane.local.settings import SupervisorSettings
from data_plane.gateway.settings import GatewaySettings
from data_plane.inference.sidecar_runtime.settings import SidecarSettings


def test_by_default_local_sources_come_from_adapter_sources_and_the_model_repository(
    tmp_path: Path,
) -> None:
    settings = SupervisorSettings(home=tmp_path / "home", MODEL_REPOSITORY=str(tmp_path / "m"))
    env = settings.adapter_source_env()
    roots = [str(tmp_path / "home" / "adapter-sources"), str(tmp_path / "m")]
    assert env["HOIST_GATEWAY_ADAPTER_SOURCE_ROOTS"].split() == roots
    assert env["SIDECAR_SOURCE_ROOTS"].split() == roots
    assert env["HOIST_GATEWAY_ADAPTER_INSTALL_DIRS"] == str(tmp_path / "home" / "adapters")


def test_the_gateway_and_the_sidecar_read_the_same_policy(tmp_path: Path) -> None:
    settings = SupervisorSettings(
        home=tmp_path,
        adapter_source_schemes="https http",
        adapter_source_hosts="store.internal 10.0.0.0/8",
        adapter_source_roots=f"{tmp_path}/shared {tmp_path}/tenants/{{tenant}}",
    )
    env = settings.adapter_source_env()
    gateway = GatewaySettings(
        **{k.removeprefix("HOIST_GATEWAY_").lower(): v for k, v in env.items() if "GATEWAY" in k}
    )
    sidecar = SidecarSettings(
        **{k.removeprefix("SIDECAR_").lower(): v for k, v in env.items() if "SIDECAR" in k}
    )
    ours, theirs = gateway.adapter_source_policy(), sidecar.source_policy()
    assert ours.schemes == theirs.schemes == ["https", "http"]
    assert ours.allowed_hosts == theirs.allowed_hosts == ["store.internal", "10.0.0.0/8"]
    assert set(ours.local_roots) <= set(theirs.local_roots)
    assert f"{tmp_path}/tenants/{{tenant}}" in theirs.local_roots


def test_the_declared_adapters_own_local_sources_are_allowed(tmp_path: Path) -> None:
    settings = SupervisorSettings(home=tmp_path / "home", adapter_source_roots="/srv/adapters")
    env = settings.adapter_source_env([f"{tmp_path}/fleet/adapters/sql", "/a b/split-me"])
    roots = env["SIDECAR_SOURCE_ROOTS"].split()
    assert roots == ["/srv/adapters", f"{tmp_path}/fleet/adapters/sql"]
