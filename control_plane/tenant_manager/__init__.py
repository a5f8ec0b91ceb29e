"""Tenant manager: validate each `Tenant` (keys, models, quotas) and write its status.

Pure cores: `validation` (the checks, shared with `hoist up`), `status` (the status).
Shell: `handlers` (kopf).
"""
