"""Model manager: `Model` -> Deployment (engine + sidecar) + Service; status mirrors them.

Pure cores: `resources` (the objects), `status` (the status). Shell: `handlers` (kopf).
"""
