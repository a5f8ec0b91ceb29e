"""Building blocks shared by every Hoist resource: strict camelCase models and conditions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# A DNS-1123 label: what Kubernetes accepts as a resource name we also use as a model id.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ResourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)
]


class Strict(BaseModel):
    """A spec type: camelCase on the wire, unknown fields refused, validated on assignment."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Strict):
    """One observation about a resource, in the Kubernetes convention."""

    type: str
    """What is observed, e.g. `Ready` or `SpecValid`."""
    status: ConditionStatus
    reason: str
    """A CamelCase word a program can switch on."""
    message: str = ""
    """A sentence for a person."""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class ObjectMeta(BaseModel):
    """The part of Kubernetes' metadata Hoist reads; the rest is kept, not interpreted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: ResourceName
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None


def set_condition(conditions: list[Condition], new: Condition, *, now: datetime) -> list[Condition]:
    """Return `conditions` with `new` in place of the one of the same type.

    The transition time moves only when the status changes, as Kubernetes expects.
    """
    out: list[Condition] = []
    replaced = False
    for old in conditions:
        if old.type != new.type:
            out.append(old)
            continue
        replaced = True
        since = old.last_transition_time if old.status == new.status else now
        out.append(new.model_copy(update={"last_transition_time": since or now}))
    if not replaced:
        out.append(new.model_copy(update={"last_transition_time": now}))
    return out


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
