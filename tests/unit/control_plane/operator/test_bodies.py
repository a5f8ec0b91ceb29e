from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.operator.bodies import already_reported, parse

BODY = {
    "apiVersion": "serving.hoist.dev/v1alpha1",
    "kind": "LoraAdapter",
    "metadata": {
        "name": "a",
        "namespace": "ns",
        "generation": 2,
        "uid": "u",
        "resourceVersion": "7",
    },
    "spec": {"baseModel": "m", "source": "/a"},
}


def test_status_written_by_others_is_tolerated() -> None:
    body = {**BODY, "status": {"phase": "Ready", "kopf": {"progress": {}}, "readyReplicas": 1}}
    adapter = parse(LoraAdapter, LoraAdapterStatus, body)
    assert adapter.status is not None
    assert adapter.status.ready_replicas == 1
    broken = {**BODY, "status": {"phase": "Sideways"}}
    assert parse(LoraAdapter, LoraAdapterStatus, broken).status is None


def test_bad_spec_raises() -> None:
    with pytest.raises(ValidationError):
        parse(
            LoraAdapter,
            LoraAdapterStatus,
            {**BODY, "spec": {"baseModel": "m", "source": "ftp://x"}},
        )


def test_already_reported() -> None:
    failed = {
        **BODY,
        "status": {
            "phase": "Failed",
            "observedGeneration": 2,
            "conditions": [{"type": "SpecValid", "status": "False", "reason": "InvalidSpec"}],
        },
    }
    assert already_reported(failed)
    assert not already_reported({**failed, "metadata": {**BODY["metadata"], "generation": 3}})
    assert not already_reported(BODY)
