"""`hoist reset`: forgets the adapters added through the gateway, per declaration or all."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from control_plane.cli import app
from control_plane.local.settings import SupervisorSettings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOIST_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _stored(home: Path, declarations: Path, *names: str) -> Path:
    store = SupervisorSettings(home=home).store_dir_for([declarations])
    store.mkdir(parents=True)
    for name in names:
        (store / f"{name}.yaml").write_text("{}")
    return store


def test_reset_forgets_one_declarations_store_only(home: Path, tmp_path: Path) -> None:
    sim = _stored(home, tmp_path / "sim", "demo", "sql")
    embedded = _stored(home, tmp_path / "embedded", "mine")
    done = CliRunner().invoke(app, ["reset", "-f", str(tmp_path / "sim")])
    assert done.exit_code == 0, done.output
    assert f"forgot 2 stored adapter(s): demo, sql ({sim})" in done.output
    assert not sim.exists() and (embedded / "mine.yaml").exists()


def test_reset_all_forgets_every_store(home: Path, tmp_path: Path) -> None:
    _stored(home, tmp_path / "sim", "demo")
    (home / "store" / "legacy.yaml").write_text("{}")  # the store older versions shared
    done = CliRunner().invoke(app, ["reset", "--all"])
    assert done.exit_code == 0, done.output
    assert "forgot 2 stored adapter(s): demo, legacy" in done.output
    assert not (home / "store").exists()


def test_reset_needs_a_declaration_or_all(home: Path) -> None:
    done = CliRunner().invoke(app, ["reset"])
    assert done.exit_code == 2
    assert "-f PATH" in done.output
