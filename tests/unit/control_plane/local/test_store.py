"""The local adapter store: validation, generations, persistence across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control_plane.api import LoraAdapterPhase, LoraAdapterStatus
from control_plane.local.store import AdapterStore, StoreError


def doc(source: str = "/a/sql", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "sql"}, "spec": {"baseModel": "base", "source": source, **spec}}


@pytest.fixture
def store(tmp_path: Path) -> AdapterStore:
    return AdapterStore(tmp_path, lambda: {"base"})


def test_create_update_and_unchanged(store: AdapterStore) -> None:
    created, is_new = store.put(doc())
    assert is_new and created.metadata.generation == 1
    same, is_new = store.put(doc())
    assert not is_new and same.metadata.generation == 1
    changed, _ = store.put(doc(source="/a/sql-v2"))
    assert changed.metadata.generation == 2


def test_survives_a_restart_with_its_status(tmp_path: Path, store: AdapterStore) -> None:
    store.put(doc())
    store.set_status("sql", LoraAdapterStatus(phase=LoraAdapterPhase.READY, ready_replicas=2))
    again = AdapterStore(tmp_path, lambda: {"base"})
    adapter = again.get("sql")
    assert adapter is not None and adapter.status is not None
    assert adapter.status.phase is LoraAdapterPhase.READY
    assert again.delete("sql") and not again.delete("sql")
    assert AdapterStore(tmp_path, lambda: {"base"}).get("sql") is None


@pytest.mark.parametrize(
    ("document", "name", "field"),
    [
        pytest.param(
            {**doc(), "spec": {"baseModel": "other", "source": "/a"}},
            None,
            "spec.baseModel",
            id="unknown-base",
        ),
        pytest.param(doc(source="ftp://x/y"), None, "spec.source", id="bad-scheme"),
        pytest.param(
            {"metadata": {"name": "base"}, "spec": {"baseModel": "base", "source": "/a"}},
            None,
            "metadata.name",
            id="named-like-a-model",
        ),
        pytest.param(doc(), "other-name", "metadata.name", id="name-mismatch"),
        pytest.param({"metadata": "x", "spec": {}}, None, "metadata", id="metadata-not-a-mapping"),
        pytest.param(
            {"metadata": {"name": "sql"}, "spec": {"baseModel": "base"}},
            None,
            "spec.source",
            id="missing-source",
        ),
    ],
)
def test_refusals_name_the_field(
    store: AdapterStore, document: dict[str, Any], name: str | None, field: str
) -> None:
    with pytest.raises(StoreError) as caught:
        store.put(document, name=name)
    assert caught.value.field == field
    assert len(store) == 0
