"""One operator process running the control plane's managers (model, LoRA; autoscaler next).

`python -m control_plane.operator` (settings: `HOIST_OPERATOR_*`, see `settings`).
"""
