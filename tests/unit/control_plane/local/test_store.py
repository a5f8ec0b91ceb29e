"""The local adapter store: validation, generations, persistence across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control_plane.api import LoraAdapter, LoraAdapterPhase, LoraAdapterStatus
from control_plane.local.store import AdapterStore, StoreError, restore_notes, store_key


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


def test_declared_adapters_are_served_but_never_stored(tmp_path: Path, store: AdapterStore) -> None:
    store.put(doc())  # a run of an older version wrote the declared adapter to disk
    declared = LoraAdapter.model_validate({**doc(source="/a/sql-v2"), "kind": "LoraAdapter"})
    store.declare(declared)
    store.set_status("sql", LoraAdapterStatus(phase=LoraAdapterPhase.READY))
    adapter = store.get("sql")
    assert adapter is not None and adapter.spec.source == "/a/sql-v2"
    assert list(tmp_path.glob("*.yaml")) == []  # the YAML declares it: no second copy
    store.put(doc(source="/a/sql-v3"))  # changed through the API: from now on it is stored
    assert [p.name for p in tmp_path.glob("*.yaml")] == ["sql.yaml"]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param(
            ["examples/sim"], ["./examples/sim/"], True, id="same-folder-spelled-two-ways"
        ),
        pytest.param(["examples/sim"], ["other/sim"], False, id="same-name-other-folder"),
        pytest.param(["a.yaml", "b.yaml"], ["b.yaml", "a.yaml"], True, id="order-does-not-matter"),
        pytest.param(["a.yaml"], ["a.yaml", "b.yaml"], False, id="one-more-file"),
    ],
)
def test_a_store_per_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: list[str], second: list[str], same: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    one, two = store_key(map(Path, first)), store_key(map(Path, second))
    assert (one == two) is same
    assert one.startswith(Path(first[0]).stem + "-")  # a person can tell which it is


def test_an_adapter_added_for_one_declaration_is_not_in_another(tmp_path: Path) -> None:
    sim, embedded = (tmp_path / "store" / store_key([Path(p)]) for p in ("sim", "embedded"))
    AdapterStore(embedded, lambda: {"base"}).put(doc())
    assert AdapterStore(sim, lambda: {"base"}).get("sql") is None
    assert AdapterStore(embedded, lambda: {"base"}).get("sql") is not None


def test_restore_notes_name_the_adapters_and_how_to_drop_them(tmp_path: Path) -> None:
    stores = tmp_path / "store"
    root = stores / "sim-0123"
    assert restore_notes([], root, stores) == []
    [note] = restore_notes(["demo", "sql"], root, stores)
    assert "2 adapter(s)" in note and "demo, sql" in note and str(root) in note
    assert "hoist reset -f PATH" in note and "DELETE /v1/adapters/NAME" in note
    stores.mkdir()
    (stores / "old.yaml").write_text("{}")  # the store older versions shared
    assert "old in" in restore_notes([], root, stores)[0]
