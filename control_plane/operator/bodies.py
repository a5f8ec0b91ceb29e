"""Resource bodies from kopf -> typed resources, tolerant of whatever sits in `status`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain JSON dict of a kopf body (its nested views included)."""
    doc: dict[str, Any] = orjson.loads(orjson.dumps(body, default=dict))
    return doc


def parse(cls: type[T], status_cls: type[BaseModel], body: Mapping[str, Any]) -> T:
    """The resource with its status; raises `ValidationError` only for a bad spec/metadata.

    A status this version cannot read (written by another version, or half-written) is
    dropped: the next pass writes a fresh one.
    """
    doc = plain(body)
    raw_status = doc.pop("status", None)
    resource = cls.model_validate(doc)
    if isinstance(raw_status, dict):
        known = {f.alias or n for n, f in status_cls.model_fields.items()}
        try:
            status = status_cls.model_validate({k: v for k, v in raw_status.items() if k in known})
        except ValidationError:
            return resource
        return resource.model_copy(update={"status": status})
    return resource


def dump_status(status: Any) -> dict[str, Any]:
    doc: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return doc


def already_reported(body: Mapping[str, Any]) -> bool:
    """The status already says this very spec is invalid (a periodic pass need not repeat it)."""
    status = body.get("status") or {}
    return bool(
        status.get("phase") == "Failed"
        and status.get("observedGeneration") == (body.get("metadata") or {}).get("generation")
        and any(
            c.get("type") == "SpecValid" and c.get("status") == "False"
            for c in status.get("conditions") or []
        )
    )


def error_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"
