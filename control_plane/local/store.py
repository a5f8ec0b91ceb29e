"""The embedded default's adapter store: what `kubectl` and etcd are to a cluster.

LoraAdapter documents live in memory and, one YAML file each, under
`HOIST_HOME/store/<declaration>` (`store_key`: one folder per set of `-f` paths), so
adapters added through the gateway survive a restart of `hoist up` with the same
declarations, and never appear in a run of other ones. Adapters the declarations name are
kept in memory only: the YAML is their record. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from control_plane.api import LoraAdapter, LoraAdapterStatus
from control_plane.documents import dump


class StoreError(ValueError):
    """A document the store refuses; `field` names the offending field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def store_key(declared: Iterable[Path]) -> str:
    """The store folder's name for the declarations `hoist up -f` read: the first path's
    name (for people) and a digest of every resolved path (so `-f examples/sim` from any
    working directory is one store, and `examples/sim` and `other/sim` are two)."""
    resolved = sorted({str(Path(p).expanduser().resolve()) for p in declared})
    digest = hashlib.sha256("\n".join(resolved).encode()).hexdigest()[:12]
    label = Path(resolved[0]).stem if resolved else "none"
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip(".-") or "root"
    return f"{label}-{digest}"


class AdapterStore:
    def __init__(self, root: Path | None, models: Callable[[], set[str]]) -> None:
        """`root`: the folder adapters added through the API persist in (None: memory)."""
        self._root = root
        self._models = models
        self._items: dict[str, LoraAdapter] = {}
        self._declared: set[str] = set()  # from the declarations: never written to disk
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
            for path in sorted(root.glob("*.yaml")):
                adapter = LoraAdapter.model_validate(yaml.safe_load(path.read_text()))
                self._items[adapter.metadata.name] = adapter

    def __iter__(self) -> Iterator[LoraAdapter]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> LoraAdapter | None:
        return self._items.get(name)

    @property
    def root(self) -> Path | None:
        return self._root

    def declare(self, adapter: LoraAdapter) -> None:
        """An adapter of the declarations: served like the others, kept in memory only
        (a stored copy from an earlier run is replaced, and removed from disk)."""
        self.put(dump(adapter))
        self._declared.add(adapter.metadata.name)
        self._unlink(adapter.metadata.name)

    def put(self, document: dict[str, Any], *, name: str | None = None) -> tuple[LoraAdapter, bool]:
        """Create or update an adapter from a LoraAdapter document; return it and `created`."""
        document = dict(document)
        document.pop("status", None)
        document.setdefault("apiVersion", "serving.hoist.dev/v1alpha1")
        document.setdefault("kind", "LoraAdapter")
        metadata = document.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise StoreError("metadata must be a mapping", "metadata")
        if name is not None:
            if metadata.get("name", name) != name:
                raise StoreError(f"metadata.name must match the URL ({name!r})", "metadata.name")
            metadata["name"] = name
        try:
            adapter = LoraAdapter.model_validate(document)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            raise StoreError(f"{field}: {message}", field) from exc
        models = self._models()
        if adapter.spec.base_model not in models:
            raise StoreError(
                f'spec.baseModel: no Model named "{adapter.spec.base_model}"', "spec.baseModel"
            )
        if adapter.metadata.name in models:  # a model id names one thing only
            raise StoreError(
                f'metadata.name: a Model is named "{adapter.metadata.name}"', "metadata.name"
            )
        old = self._items.get(adapter.metadata.name)
        if old is not None and old.spec == adapter.spec:
            return old, False  # unchanged: keep generation and status
        generation = (old.metadata.generation or 1) + 1 if old else 1
        adapter.metadata.generation = generation
        adapter.status = LoraAdapterStatus(desired_replicas=0) if old is None else old.status
        self._items[adapter.metadata.name] = adapter
        self._declared.discard(adapter.metadata.name)  # changed through the API: stored
        self._persist(adapter)
        return adapter, old is None

    def set_status(self, name: str, status: LoraAdapterStatus) -> None:
        adapter = self._items.get(name)
        if adapter is not None and adapter.status != status:
            adapter.status = status
            self._persist(adapter)

    def delete(self, name: str) -> bool:
        if self._items.pop(name, None) is None:
            return False
        self._declared.discard(name)
        self._unlink(name)
        return True

    def _unlink(self, name: str) -> None:
        if self._root is not None:
            (self._root / f"{name}.yaml").unlink(missing_ok=True)

    def _persist(self, adapter: LoraAdapter) -> None:
        if self._root is None or adapter.metadata.name in self._declared:
            return
        text = yaml.safe_dump(dump(adapter), sort_keys=False)
        fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, self._root / f"{adapter.metadata.name}.yaml")


def restore_notes(restored: list[str], root: Path | None, stores: Path) -> list[str]:
    """What `hoist up` says about the adapters it restores from its store (plain text)."""
    notes = []
    if restored and root is not None:
        notes.append(
            f"restoring {len(restored)} adapter(s) added through the gateway in an earlier run "
            f"of these declarations: {', '.join(restored)} (stored in {root}; "
            "`DELETE /v1/adapters/NAME` drops one, `hoist reset -f PATH` all of them)"
        )
    legacy = sorted(p.stem for p in stores.glob("*.yaml")) if stores.is_dir() else []
    if legacy:
        notes.append(
            f"note: not restored: {', '.join(legacy)} in {stores}/*.yaml, the store older "
            "versions shared between all declarations (`hoist reset --all` deletes it)"
        )
    return notes
