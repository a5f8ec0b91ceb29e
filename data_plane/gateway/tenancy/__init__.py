"""Multi-tenancy in the gateway: API keys, tenant policies, quotas (see docs/tenancy.md).

Pure cores (`keys`, `policy`, `quota`, `usage`) and one shell (`service`) that the proxy
and the control routes call at a few marked hook points.
"""
