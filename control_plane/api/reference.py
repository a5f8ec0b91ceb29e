"""Render docs/api.md, the field reference of the resources, from the types themselves.

`hoist crds --out k8s/crds` writes it beside the CRDs' generation (`make crds`); a test
fails when the checked-in page drifts from the types.
"""

from __future__ import annotations

import types
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from control_plane.api.lora_adapter import LoraAdapterSpec, LoraAdapterStatus
from control_plane.api.model import ModelSpec, ModelStatus
from control_plane.api.tenant import TenantSpec, TenantStatus

_INTRO = """\
# Resource reference (`serving.hoist.dev/v1alpha1`)

Generated from `control_plane/api` by `make crds`; do not edit by hand. The same fields
are accepted by `kubectl apply` (through the CRDs in `k8s/crds`) and by `hoist up -f`.
Unknown fields are refused.

The gateway's OpenAI API (every endpoint and parameter: supported, passed through or refused,
and how engine errors are translated) is in [openai-compatibility.md](openai-compatibility.md).
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is not None and get_args(annotation):
        return _type_name(get_args(annotation)[0])  # Annotated[...] and friends
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined:
        return "required" if info.default_factory is None else ""
    if info.default is None:
        return ""
    value = info.default.value if isinstance(info.default, Enum) else info.default
    return f"`{value}`"


def _nested(annotation: Any) -> list[type[BaseModel]]:
    """The resource types an annotation mentions (`X`, `X | None`, `list[X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _nested(arg)]


def _table(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    seen.add(model)
    lines = [
        f"### {model.__name__}",
        "",
        "| field | type | default | meaning |",
        "|---|---|---|---|",
    ]
    children: list[type[BaseModel]] = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        doc = (info.description or "").replace("\n", " ")
        lines.append(f"| `{alias}` | {_type_name(info.annotation)} | {_default(info)} | {doc} |")
        children += [c for c in _nested(info.annotation) if c not in seen]
    lines.append("")
    for child in children:
        if child not in seen:
            lines += _table(child, seen)
    return lines


def render_reference() -> str:
    seen: set[type[BaseModel]] = set()
    lines = [_INTRO]
    for title, spec, status in (
        ("Model", ModelSpec, ModelStatus),
        ("LoraAdapter", LoraAdapterSpec, LoraAdapterStatus),
        ("Tenant", TenantSpec, TenantStatus),
    ):
        lines += [f"## {title}", ""]
        lines += _table(spec, seen)
        lines += _table(status, seen)
    return "\n".join(lines).rstrip() + "\n"
