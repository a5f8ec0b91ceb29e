"""The resource types accept what the docs promise and refuse nonsense with a clear message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from control_plane.api import LoraAdapterSpec, ModelSpec
from control_plane.api.common import Condition, ConditionStatus, set_condition


def test_model_defaults() -> None:
    spec = ModelSpec.model_validate({"source": "m"})
    assert (spec.replicas, spec.engine, spec.lora.max_loras) == (1, "vllm", 4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"minReplicas": 3, "maxReplicas": 2, "replicas": 2},
            "minReplicas must not exceed",
            id="min-above-max",
        ),
        pytest.param(
            {"replicas": 5, "maxReplicas": 2}, "replicas must lie within", id="replicas-above-max"
        ),
        pytest.param({"replicas": -1}, "greater than or equal to 0", id="negative-replicas"),
        pytest.param({"autoscaling": {"targetConcurrency": 0}}, "greater than 0", id="target-zero"),
        pytest.param(
            {"autoscaling": {"stableWindowSeconds": -5}},
            "greater than or equal to 1",
            id="negative-window",
        ),
        pytest.param(
            {"autoscaling": {"panicWindowSeconds": 90, "stableWindowSeconds": 60}},
            "panicWindowSeconds must not exceed",
            id="panic-longer-than-stable",
        ),
        pytest.param(
            {"lora": {"maxLoras": 8, "maxCpuLoras": 4}},
            "maxCpuLoras must be at least",
            id="cpu-cache-too-small",
        ),
        pytest.param({"lora": {"maxLoraRank": 12}}, "Input should be 8, 16", id="odd-rank"),
        pytest.param(
            {"kvCache": {"gpuMemoryUtilization": 1.5}}, "less than or equal to 1", id="gpu-fraction"
        ),
        pytest.param({"engine": "tgi"}, "Input should be 'vllm' or 'sim'", id="unknown-engine"),
        pytest.param({"gpus": 1}, "Extra inputs are not permitted", id="unknown-field"),
    ],
)
def test_model_spec_refuses(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.model_validate({"source": "m", **spec})


@pytest.mark.parametrize(
    "source",
    [
        "/srv/adapters/sql",
        "adapters/sql",
        "file:///srv/sql",
        "https://example.test/sql.tar.gz",
        "s3://bucket/sql",
    ],
)
def test_adapter_sources_accepted(source: str) -> None:
    assert LoraAdapterSpec.model_validate({"baseModel": "m", "source": source}).source == source


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"source": "ftp://host/a"}, "unsupported scheme ftp://", id="ftp"),
        pytest.param({"source": "gs://bucket/a"}, "unsupported scheme gs://", id="gcs"),
        pytest.param({"source": "/a", "sha256": "abc"}, "should match pattern", id="short-sha"),
        pytest.param(
            {"source": "/a", "placement": {"replicas": 0}},
            "greater than or equal to 1",
            id="zero-replicas",
        ),
        pytest.param({"source": "/a", "placement": {"replicas": "some"}}, "'all'", id="not-all"),
        pytest.param(
            {"source": "/a", "baseModel": "Not_A_Name"}, "should match pattern", id="bad-base-name"
        ),
    ],
)
def test_adapter_spec_refuses(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LoraAdapterSpec.model_validate({"baseModel": "m", **spec})


def test_condition_transition_time_moves_only_on_status_change() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ready = Condition(type="Ready", status=ConditionStatus.FALSE, reason="Loading")
    conditions = set_condition([], ready, now=t0)
    same = set_condition(
        conditions,
        ready.model_copy(update={"reason": "StillLoading"}),
        now=t0 + timedelta(seconds=5),
    )
    assert same[0].last_transition_time == t0
    assert same[0].reason == "StillLoading"
    flipped = set_condition(
        same,
        ready.model_copy(update={"status": ConditionStatus.TRUE}),
        now=t0 + timedelta(seconds=9),
    )
    assert flipped[0].last_transition_time == t0 + timedelta(seconds=9)
    assert len(flipped) == 1
