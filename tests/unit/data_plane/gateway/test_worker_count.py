"""How many workers the gateway starts: cgroup CPU quotas, affinity, and the quota rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data_plane.gateway import __main__ as gateway_main
from data_plane.gateway.tenancy.policy import TenantPolicy
from data_plane.gateway.worker_count import (
    available_cores,
    cgroup_cores,
    choose,
    declares_quota,
    quota_cores,
)


@pytest.mark.parametrize(
    ("quota", "period", "cores"),
    [
        pytest.param("max", "100000", None, id="v2-unlimited"),
        pytest.param("-1", "100000", None, id="v1-unlimited"),
        pytest.param("200000", "100000", 2, id="two-cores"),
        pytest.param("150000", "100000", 2, id="fraction-rounds-up"),
        pytest.param("50000", "100000", 1, id="half-a-core-is-one"),
        pytest.param("400000", "50000", 8, id="short-period"),
        pytest.param("0", "100000", None, id="zero-is-no-quota"),
        pytest.param("200000", "0", None, id="zero-period"),
        pytest.param("lots", "100000", None, id="not-a-number"),
    ],
)
def test_quota_cores(quota: str, period: str, cores: int | None) -> None:
    assert quota_cores(quota, period) == cores


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        pytest.param({"cpu.max": "max 100000\n"}, None, id="v2-max"),
        pytest.param({"cpu.max": "300000 100000\n"}, 3, id="v2-limit"),
        pytest.param({"cpu.max": "garbage\n"}, None, id="v2-malformed"),
        pytest.param(
            {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"},
            2,
            id="v1-cpu",
        ),
        pytest.param(
            {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
            None,
            id="v1-unlimited",
        ),
        pytest.param(
            {"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
            1,
            id="v1-cpu-cpuacct",
        ),
        pytest.param({"cpu/cpu.cfs_quota_us": "200000\n"}, None, id="v1-no-period"),
        pytest.param({}, None, id="no-cgroup-files"),
    ],
)
def test_cgroup_cores(tmp_path: Path, files: dict[str, str], cores: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cores(tmp_path) == cores


def test_available_cores_is_the_affinity_within_the_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(tmp_path) == affinity  # no quota files: the affinity
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(affinity + 4) * 100000} 100000\n")
    assert available_cores(tmp_path) == affinity  # a quota above the CPUs does not add any


@pytest.mark.parametrize(
    ("configured", "cores", "quotas", "shared", "workers"),
    [
        pytest.param(None, 4, False, False, 4, id="one-per-core"),
        pytest.param(None, 1, False, False, 1, id="one-core"),
        pytest.param(3, 8, True, False, 3, id="set-wins-over-everything"),
        pytest.param(None, 4, True, False, 1, id="per-process-quotas-one-worker"),
        pytest.param(None, 4, True, True, 4, id="shared-quotas-one-per-core"),
        pytest.param(None, 4, False, True, 4, id="store-without-quotas"),
    ],
)
def test_choose(
    configured: int | None, cores: int, quotas: bool, shared: bool, workers: int
) -> None:
    choice = choose(configured, cores, quotas_declared=quotas, shared_quota_store=shared)
    assert choice.workers == workers
    if quotas and not shared and configured is None:
        assert "tenant_redis_url" in choice.reason


@pytest.mark.parametrize(
    ("tenant", "declares"),
    [
        pytest.param(TenantPolicy("a"), False, id="no-quota"),
        pytest.param(TenantPolicy("a", weight=3), False, id="weight-is-no-quota"),
        pytest.param(TenantPolicy("a", requests_per_minute=10), True, id="rpm"),
        pytest.param(TenantPolicy("a", tokens_per_minute=10), True, id="tpm"),
        pytest.param(TenantPolicy("a", concurrent_requests=2), True, id="concurrency"),
    ],
)
def test_declares_quota(tenant: TenantPolicy, declares: bool) -> None:
    assert declares_quota([TenantPolicy("plain"), tenant]) is declares


STATIC = ["--discovery", "static", "--upstream", "m=http://127.0.0.1:9"]
TENANTS = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Tenant
metadata: {name: team-a}
spec: {quotas: {requestsPerMinute: 600}}
"""


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_main, "available_cores", lambda: 4)
    monkeypatch.delenv("HOIST_GATEWAY_WORKERS", raising=False)


@pytest.mark.usefixtures("four_cores")
def test_unset_workers_follow_the_cores() -> None:
    settings = gateway_main.parse_settings(STATIC)
    assert gateway_main.with_worker_count(settings).workers == 4


@pytest.mark.usefixtures("four_cores")
def test_workers_from_the_flag_or_the_environment_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flagged = gateway_main.parse_settings([*STATIC, "--workers", "1"])
    assert gateway_main.with_worker_count(flagged).workers == 1
    monkeypatch.setenv("HOIST_GATEWAY_WORKERS", "2")
    from_env = gateway_main.parse_settings(STATIC)
    assert gateway_main.with_worker_count(from_env).workers == 2


@pytest.mark.usefixtures("four_cores")
def test_declared_quotas_without_a_shared_store_run_one_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANTS)
    env_free = gateway_main.parse_settings(STATIC).model_copy(update={"tenants_files": [tenants]})
    with caplog.at_level("INFO", logger="hoist.gateway"):
        assert gateway_main.with_worker_count(env_free).workers == 1
    assert "tenants declare quotas" in caplog.text
    shared = env_free.model_copy(update={"tenant_redis_url": "redis://127.0.0.1:1/0"})
    assert gateway_main.with_worker_count(shared).workers == 4
