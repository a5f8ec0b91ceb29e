"""Static discovery: a fixed set of upstreams (tests, benchmarks, a single engine)."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml

from data_plane.gateway.discovery.state import StateError, merge, parse_state, parse_upstreams
from data_plane.gateway.fleet import FleetSnapshot


class StaticDiscovery:
    def __init__(self, snapshot: FleetSnapshot) -> None:
        self._snapshot = snapshot

    @classmethod
    def from_settings(cls, upstreams: list[str], file: Path | None) -> StaticDiscovery:
        """Raises StateError (a clear message) on a bad entry or file."""
        snapshot = parse_upstreams(upstreams)
        if file is not None:
            try:
                text = file.read_text()
            except OSError as exc:
                raise StateError(f"cannot read {file}: {exc.strerror}") from exc
            try:
                doc = orjson.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
            except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
                raise StateError(f"{file} is not valid JSON/YAML: {exc}") from exc
            snapshot = merge(snapshot, parse_state(doc))
        return cls(snapshot)

    async def fetch(self) -> FleetSnapshot:
        return self._snapshot
