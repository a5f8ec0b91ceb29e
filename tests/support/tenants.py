"""Tenant and key files for gateway tests (the embedded default's file formats)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_tenant_files(folder: Path, keys: Mapping[str, str]) -> tuple[Path, Path]:
    """A Tenant per name in `keys` (no quotas) and the key file giving each its key."""
    tenants = folder / "tenants.yaml"
    tenants.write_text(
        "".join(
            f"---\napiVersion: serving.hoist.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {t}}}\n"
            for t in keys
        )
    )
    key_file = folder / "keys.txt"
    key_file.write_text("".join(f"{t}: {k}\n" for t, k in keys.items()))
    return tenants, key_file
