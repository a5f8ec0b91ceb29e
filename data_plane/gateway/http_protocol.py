"""uvicorn's httptools protocol with a deadline on the request head.

uvicorn closes a kept-alive connection that stays idle, but a connection that opens and
then sends its request line and headers slowly, or never finishes them, is held forever:
a few thousand of those (slowloris) take every file descriptor. Here every request head
must be complete within `head_timeout_s` of the connection opening or of the request's
first byte; otherwise the connection is closed. Nothing is added once the head is in: the
body has its own deadline (`body_timeout_s`), the answer the upstream's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadTimeoutProtocol(HttpToolsProtocol):
    head_timeout_s: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def head_timeout_protocol(timeout_s: float) -> type[HeadTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` setting, with this head deadline."""
    attributes: dict[str, Any] = {"head_timeout_s": timeout_s}
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), attributes)
