"""A vLLM-compatible engine simulator for tests and fleet-scale benchmarks.

Pure cores (no I/O): `profiles` (latency model), `kv_cache` (paged KV + prefix cache),
`lora_slots`, `engine_core` (continuous batching in virtual time), `text` (tokens and
deterministic output), `protocol` (vLLM's request checks and response shapes).
Shells: `engine` (the clock loop), `metrics` (vllm:* series), `server` (aiohttp routes),
`settings` and `runner` (the process). Documentation: docs/simulator.md.
"""
