"""The adapter API's wire types (pure): the two request forms and the answers.

A request body is either a LoraAdapter document or the flat form; the spec is the
resource's own (`control_plane.api.LoraAdapterSpec`), so the API refuses exactly what
`kubectl apply` and `hoist up` refuse:

    {"apiVersion": ..., "kind": "LoraAdapter", "metadata": {"name": ...}, "spec": {...}}
    {"name": ..., "baseModel": ..., "source": ..., "sha256": ..., "placement": {...}}

The name may be left out where the path gives it (`PUT /v1/adapters/{name}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel

from control_plane.api import LoraAdapter, LoraAdapterSpec, ObjectMeta
from control_plane.api.common import ResourceName
from data_plane.gateway.errors import BadRequestError

MAX_INT64 = 2**63 - 1


class AdapterMetadata(ObjectMeta):
    name: ResourceName | None = None  # type: ignore[assignment]
    """The adapter's name, a model id; optional where the path names it."""
    generation: Annotated[int, Field(ge=0, le=MAX_INT64)] | None = None


class AdapterDocumentBody(BaseModel):
    """A LoraAdapter document; a `status` sent along is the store's to set, and ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "apiVersion": "serving.hoist.dev/v1alpha1",
                    "kind": "LoraAdapter",
                    "metadata": {"name": "sql-lora"},
                    "spec": {"baseModel": "llama", "source": "s3://adapters/sql-lora"},
                }
            ]
        },
    )

    api_version: Literal["serving.hoist.dev/v1alpha1"] = "serving.hoist.dev/v1alpha1"
    kind: Literal["LoraAdapter"] = "LoraAdapter"
    metadata: AdapterMetadata = Field(default_factory=AdapterMetadata)
    spec: LoraAdapterSpec
    status: Any = None


class FlatAdapterBody(LoraAdapterSpec):
    """The spec's fields at the top level, with the name beside them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "sql-lora", "baseModel": "llama", "source": "adapters/sql-lora"},
            ]
        }
    )

    name: ResourceName | None = None
    """The adapter's name, a model id; optional where the path names it."""


class NamedAdapterMetadata(AdapterMetadata):
    name: ResourceName
    """The adapter's name, a model id."""


class NamedAdapterDocumentBody(AdapterDocumentBody):
    metadata: NamedAdapterMetadata


class NamedFlatAdapterBody(FlatAdapterBody):
    name: ResourceName
    """The adapter's name, a model id."""


def _form(value: Any) -> str:
    return "document" if isinstance(value, dict) and "spec" in value else "flat"


AdapterBody = Annotated[
    Annotated[AdapterDocumentBody, Tag("document")] | Annotated[FlatAdapterBody, Tag("flat")],
    Discriminator(_form),
]
"""`PUT /v1/adapters/{name}`: the path names the adapter."""
NamedAdapterBody = Annotated[
    Annotated[NamedAdapterDocumentBody, Tag("document")]
    | Annotated[NamedFlatAdapterBody, Tag("flat")],
    Discriminator(_form),
]
"""`POST /v1/adapters`: the body names the adapter."""


def as_document(body: AdapterDocumentBody | FlatAdapterBody, name: str | None) -> dict[str, Any]:
    """The body as a LoraAdapter document (what was sent, no defaults added); the name
    from the path where the body has none."""
    if isinstance(body, AdapterDocumentBody):
        meta = body.metadata.model_dump(mode="json", by_alias=True, exclude_unset=True)
        spec = body.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    else:
        meta = {"name": body.name}
        spec = body.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"name"})
    if meta.get("name") is None:
        meta["name"] = name
    return {"metadata": meta, "spec": spec}


def body_error(errors: Sequence[Any]) -> BadRequestError:
    """The first of pydantic's errors about a request body, as OpenAI's 400.

    `param` names the field as in the document form (`spec.source`, `metadata.name`), for
    either form, as the resource's own validation does.
    """
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ())]
    if loc[:1] == ["body"]:
        loc = loc[1:]
    kind = first.get("type")
    if kind == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        return BadRequestError(f"The request body is not valid JSON: {reason}")
    if loc[:1] == ["document"]:
        loc = loc[1:]
    elif loc[:1] == ["flat"]:
        loc = loc[1:]
        if loc:
            loc = ["metadata", *loc] if loc[0] == "name" else ["spec", *loc]
    if not loc:
        return BadRequestError("The body must be a JSON object.")
    param = ".".join(loc)
    return BadRequestError(f"{param}: {first.get('msg', 'invalid value')}", param=param)


class AdapterList(BaseModel):
    object: Literal["list"]
    data: list[LoraAdapter]


class AdapterDeleted(BaseModel):
    id: str
    object: Literal["adapter"]
    deleted: Literal[True]
