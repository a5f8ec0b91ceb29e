"""The embedded default's adapter store: what `kubectl` and etcd are to a cluster.

LoraAdapter documents live in memory and, one YAML file each, under `HOIST_HOME/store`,
so adapters added through the gateway survive a restart of `hoist up`. Writes are atomic.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
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


class AdapterStore:
    def __init__(self, root: Path | None, models: Callable[[], set[str]]) -> None:
        self._root = root
        self._models = models
        self._items: dict[str, LoraAdapter] = {}
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
        if self._root is not None:
            (self._root / f"{name}.yaml").unlink(missing_ok=True)
        return True

    def _persist(self, adapter: LoraAdapter) -> None:
        if self._root is None:
            return
        text = yaml.safe_dump(dump(adapter), sort_keys=False)
        fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, self._root / f"{adapter.metadata.name}.yaml")
