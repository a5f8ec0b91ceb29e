"""The ASGI types the proxy speaks, and the labels of its answers' metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Series = tuple[str, str]
"""An answer's metric labels: (model, adapter or "")."""
