"""LoRA manager: `LoraAdapter` -> which pods load it -> sidecars; status.

Pure cores: `placement` (which pods), `plan` (what to load/unload), `status` (what the
status says). Shells: `sidecar_client` (HTTP), `cycle` (observe, plan, apply), `handlers`
(kopf). The embedded default drives the same `cycle` (control_plane.local.adapters).
"""
