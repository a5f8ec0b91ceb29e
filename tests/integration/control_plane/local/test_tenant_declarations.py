"""`hoist validate` and `hoist up` refuse unusable Tenants before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HOIST = [sys.executable, "-m", "control_plane.cli"]
KEY = "sk-validate-team-a-0123"

DECLARATIONS = textwrap.dedent(
    """
    apiVersion: serving.hoist.dev/v1alpha1
    kind: Model
    metadata: {name: tiny}
    spec: {source: tiny, engine: sim}
    ---
    apiVersion: serving.hoist.dev/v1alpha1
    kind: Tenant
    metadata: {name: team-a}
    spec: {allowedModels: [ALLOWED]}
    """
)


def hoist(
    tmp_path: Path, *args: str, keys: Path | None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIST_")}
    env.update(extra_env)
    env["HOIST_HOME"] = str(tmp_path / "home")
    if keys is not None:
        env["HOIST_GATEWAY_TENANT_KEYS_FILE"] = str(keys)
    return subprocess.run(
        [*HOIST, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def write(tmp_path: Path, allowed: str, keys: str | None) -> tuple[Path, Path | None]:
    config = tmp_path / "fleet.yaml"
    config.write_text(DECLARATIONS.replace("ALLOWED", allowed))
    key_file = None
    if keys is not None:
        key_file = tmp_path / "keys.txt"
        key_file.write_text(keys)
    return config, key_file


def test_a_usable_tenant_validates(tmp_path: Path) -> None:
    config, keys = write(tmp_path, "tiny", f"team-a: {KEY}\n")
    done = hoist(tmp_path, "validate", "-f", str(config), keys=keys)
    assert done.returncode == 0, done.stderr
    assert "ok: 1 models, 0 adapters, 1 tenants" in done.stdout


@pytest.mark.parametrize("command", ["validate", "up"])
@pytest.mark.parametrize(
    ("allowed", "keys", "expected"),
    [
        pytest.param(
            "gpt-4", f"team-a: {KEY}\n",
            'fleet.yaml: document 2 (Tenant "team-a"): spec.allowedModels[0]: '
            'no Model or LoraAdapter named "gpt-4"',
            id="unknown-model",
        ),
        pytest.param(
            "tiny", None,
            'fleet.yaml: document 2 (Tenant "team-a"): no API key: set '
            "HOIST_GATEWAY_TENANT_KEYS_FILE",
            id="no-key-file",
        ),
        pytest.param(
            "tiny", f"team-a: {KEY}\nteam-a: {KEY}\n",
            'keys.txt: line 2 is the same key as line 1',
            id="duplicate-key",
        ),
    ],
)  # fmt: skip
def test_unusable_tenants_are_refused(
    tmp_path: Path, command: str, allowed: str, keys: str | None, expected: str
) -> None:
    config, key_file = write(tmp_path, allowed, keys)
    done = hoist(tmp_path, command, "-f", str(config), keys=key_file)
    assert done.returncode == 2
    assert expected in " ".join(done.stderr.split())
    assert KEY not in done.stderr + done.stdout
    assert not (tmp_path / "home" / "logs").exists()  # nothing was started


def test_a_bad_setting_is_named_not_a_traceback(tmp_path: Path) -> None:
    config, keys = write(tmp_path, "tiny", f"team-a: {KEY}\n")
    done = hoist(tmp_path, "validate", "-f", str(config), keys=keys, HOIST_GATEWAY_PORT="abc")
    assert done.returncode == 2
    assert "error: HOIST_GATEWAY_PORT: Input should be a valid integer" in done.stderr
    assert "Traceback" not in done.stderr
