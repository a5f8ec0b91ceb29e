"""Hoist data plane: serves requests (gateway, inference engine, sidecar, simulator)."""
