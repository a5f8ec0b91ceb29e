"""The inference pod's engine container: builds vLLM's arguments and supervises vLLM.

Pure cores: `args` (spec -> argv + env), `source` (where the weights are),
`restart_policy` (restart or give up). Shells: `download`, `supervisor`, `__main__`, and
`prepare` (readies SmolLM2-135M-Instruct for the embedded default).
"""
