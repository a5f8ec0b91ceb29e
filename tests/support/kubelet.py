"""Play the kubelet (or any controller that reports status) against the emulator.

The API server ignores `status` when an object with a status subresource is created or
updated (https://kubernetes.io/docs/concepts/overview/working-with-objects/#object-spec-and-status);
whoever reports status writes it through `/status`. Tests that need a Pod that is already
running create it, then report its status, as a kubelet would.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote


class Writer(Protocol):
    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...


async def create_with_status(kube: Writer, collection: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Create `doc` in `collection`, then write its `status` through /status."""
    status = doc.get("status")
    created = await kube.create(collection, {k: v for k, v in doc.items() if k != "status"})
    if status is None:
        return created
    name = quote(doc["metadata"]["name"])
    return await kube.merge_patch(f"{collection}/{name}/status", {"status": status})
