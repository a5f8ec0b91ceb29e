"""The operator's `sidecar_store_env`: where the adapter stores are, set on every sidecar."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.model_manager.resources import PodConfig
from control_plane.model_manager.wiring import pod_config
from control_plane.operator.settings import OperatorSettings


def test_store_locations_reach_every_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "HOIST_OPERATOR_SIDECAR_STORE_ENV",
        '{"AWS_ENDPOINT_URL": "http://minio.storage:9000", "HF_ENDPOINT": "http://hub.local"}',
    )
    config: PodConfig = pod_config(OperatorSettings())
    env = dict(config.sidecar_env)
    assert env["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert env["HF_ENDPOINT"] == "http://hub.local"
    assert "hf" in env["SIDECAR_SOURCE_SCHEMES"].split()


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "LD_PRELOAD"])
def test_credentials_and_other_variables_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="credentials go in a Secret"):
        OperatorSettings(sidecar_store_env={name: "x"})
