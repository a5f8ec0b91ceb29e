"""Hoist's gateway: the OpenAI-compatible door in front of every engine.

`python -m data_plane.gateway --help` lists its flags; `docs/gateway.md` describes it.
"""
