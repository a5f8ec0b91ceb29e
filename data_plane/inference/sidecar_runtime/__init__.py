"""The inference pod's sidecar: fetches, verifies, loads and re-loads LoRA adapters.

Pure cores: `sources` (what a source is, refusals), `plan` (desired vs observed -> loads,
status). Shells: `fetch` (files and downloads), `engine_client` (vLLM), `manager`
(executes plans), `app` (HTTP API), `__main__` (the process).
"""
