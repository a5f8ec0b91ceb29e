"""The handler shell the managers share: parse or refuse once, time and count a pass,
turn a Kubernetes API error into a retry, and register under stable handler ids."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.api.constants import LORA_ADAPTER_PLURAL
from control_plane.kube import KubeError
from control_plane.lora_manager.status import invalid_status
from control_plane.operator.bodies import dump_status
from control_plane.operator.metrics import OperatorMetrics
from control_plane.operator.shell import KindShell, on_spec_change

NOW = datetime(2026, 12, 7, tzinfo=UTC)
LOG = logging.getLogger("test.shell")
META = {"name": "a", "namespace": "ns", "generation": 3, "uid": "u"}
GOOD = {"metadata": META, "spec": {"baseModel": "m", "source": "/a"}}
BAD = {"metadata": META, "spec": {"baseModel": "m"}}  # no source


def shell() -> KindShell:
    return KindShell("LoraAdapter", OperatorMetrics(CollectorRegistry()), retry_seconds=7)


def count(s: KindShell, result: str) -> float:
    value = s.metrics.registry.get_sample_value(
        "hoist_operator_reconciles_total", {"kind": "LoraAdapter", "result": result}
    )
    return value or 0.0


def invalid(message: str) -> LoraAdapterStatus:
    return invalid_status(None, message, 3, now=NOW)


def test_a_valid_body_parses_and_counts_nothing() -> None:
    s, patch = shell(), kopf.Patch()
    adapter = s.parse(LoraAdapter, LoraAdapterStatus, kopf.Body(GOOD), patch, LOG, invalid=invalid)
    assert adapter is not None and adapter.spec.source == "/a"
    assert not patch and count(s, "invalid") == 0


def test_an_invalid_spec_is_reported_once_then_left_alone() -> None:
    s, patch = shell(), kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"spec\.source"):
        s.parse(LoraAdapter, LoraAdapterStatus, kopf.Body(BAD), patch, LOG, invalid=invalid)
    status = dict(patch.status)
    assert status["phase"] == "Failed" and status["observedGeneration"] == 3
    assert count(s, "invalid") == 1
    # the next pass over the same generation sees its own report: counted, not repeated
    reported: dict[str, Any] = {**BAD, "status": status}
    again = kopf.Patch()
    parsed = s.parse(
        LoraAdapter, LoraAdapterStatus, kopf.Body(reported), again, LOG, invalid=invalid
    )
    assert parsed is None and not again and count(s, "invalid") == 2


def test_a_refusal_writes_the_status_it_is_given() -> None:
    s, patch = shell(), kopf.Patch()
    status = invalid_status(None, "not allowed", 3, now=NOW, reason="SourceNotAllowed")
    with pytest.raises(kopf.PermanentError, match="not allowed"):
        s.refuse(kopf.Body(GOOD), patch, LOG, "not allowed", lambda _: status, log="refused")
    assert dict(patch.status) == dump_status(status)


@pytest.mark.parametrize(
    ("error", "raised", "result"),
    [
        pytest.param(None, None, "ok", id="done"),
        pytest.param(KubeError(500, "boom"), kopf.TemporaryError, "error", id="api-error-retried"),
        pytest.param(ValueError("bug"), ValueError, None, id="other-error-passes-through"),
    ],
)
def test_a_kube_pass_is_timed_counted_and_retried_after_an_api_error(
    error: Exception | None, raised: type[Exception] | None, result: str | None
) -> None:
    ticks = iter([10.0, 12.5])
    s = KindShell(
        "LoraAdapter",
        OperatorMetrics(CollectorRegistry()),
        retry_seconds=7,
        clock=lambda: next(ticks),
    )
    if raised is None:
        with s.kube_pass():
            pass
    else:
        assert error is not None
        with pytest.raises(raised) as caught, s.kube_pass():
            raise error
        if isinstance(caught.value, kopf.TemporaryError):
            assert caught.value.delay == 7
    assert count(s, "ok") == (1 if result == "ok" else 0)
    assert count(s, "error") == (1 if result == "error" else 0)
    seconds = s.metrics.registry.get_sample_value(
        "hoist_operator_reconcile_seconds_sum", {"kind": "LoraAdapter"}
    )
    assert seconds == 2.5


def test_spec_changes_register_under_the_ids_kopf_kept_progress_under() -> None:
    registry = kopf.OperatorRegistry()

    async def run(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger) -> None:
        del body, patch, logger

    on_spec_change(registry, LORA_ADAPTER_PLURAL, run, id="register.<locals>.adapter_changed")
    handlers = registry._changing.get_all_handlers()  # kopf keeps no public listing
    # a resume handler is kopf's `initial` one, for no particular reason
    ids = sorted(("resume" if h.initial else str(h.reason), str(h.id)) for h in handlers)
    assert ids == [
        ("create", "register.<locals>.adapter_changed"),
        ("resume", "register.<locals>.adapter_changed"),
        ("update", "register.<locals>.adapter_changed/spec"),
    ]
