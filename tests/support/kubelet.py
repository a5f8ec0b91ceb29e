"""Play the kubelet (or any controller that reports status) against the emulator.

The API server ignores `status` when an object with a status subresource is created or
updated (https://kubernetes.io/docs/concepts/overview/working-with-objects/#object-spec-and-status);
whoever reports status writes it through `/status`. Tests that need a Pod that is already
running create it, then report its status, as a kubelet would.
"""

from __future__ import annotations

from typing import Any, Protocol

from control_plane.kube import Ref


class Writer(Protocol):
    async def create(self, ref: Ref, body: dict[str, Any]) -> dict[str, Any]: ...

    async def merge_patch(self, ref: Ref, body: dict[str, Any]) -> dict[str, Any]: ...


async def create_with_status(kube: Writer, collection: Ref, doc: dict[str, Any]) -> dict[str, Any]:
    """Create `doc` in `collection`, then write its `status` through /status."""
    status = doc.get("status")
    created = await kube.create(collection, {k: v for k, v in doc.items() if k != "status"})
    if status is None:
        return created
    target = collection.named(doc["metadata"]["name"]).status_of()
    return await kube.merge_patch(target, {"status": status})
