"""The gateway's ASGI app for granian, for `bench/gateway_servers.py` (static discovery,
settings from the environment as `python -m data_plane.gateway` reads them)."""

from __future__ import annotations

from data_plane.gateway.__main__ import build
from data_plane.gateway.settings import GatewaySettings

app = build(GatewaySettings(), freeze_after_start=True)
